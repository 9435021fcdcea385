/* The library's one parser and printer of times: the data folder's files, the server's
 * answers. A time without a zone is refused, never guessed to be UTC. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"

static bool digits(const char *text, int count, int *out)
{
    int value = 0;
    for (int i = 0; i < count; i++) {
        if (!isdigit((unsigned char)text[i]))
            return false;
        value = value * 10 + (text[i] - '0');
    }
    *out = value;
    return true;
}

/* Days since 1970-01-01 of a civil date (proleptic Gregorian). */
static int64_t days_from_civil(int64_t year, int month, int day)
{
    year -= month <= 2;
    int64_t era = (year >= 0 ? year : year - 399) / 400;
    int64_t year_of_era = year - era * 400;
    int64_t day_of_year = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1;
    int64_t day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    return era * 146097 + day_of_era - 719468;
}

static int days_in_month(int year, int month)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    return month == 2 && leap ? 29 : days[month - 1];
}

bool parse_time(const char *text, int64_t *out)
{
    if (text == NULL)
        return false;
    while (isspace((unsigned char)*text))
        text++;
    size_t length = strlen(text);
    while (length > 0 && isspace((unsigned char)text[length - 1]))
        length--;
    /* YYYY-MM-DD[T ]HH:MM[:SS[.fraction]] then Z or ±HH:MM */
    int year, month, day, hour, minute, second = 0;
    if (length < 17 || !digits(text, 4, &year) || text[4] != '-' || !digits(text + 5, 2, &month) ||
        text[7] != '-' || !digits(text + 8, 2, &day) || (text[10] != 'T' && text[10] != ' ') ||
        !digits(text + 11, 2, &hour) || text[13] != ':' || !digits(text + 14, 2, &minute))
        return false;
    size_t at = 16;
    if (at < length && text[at] == ':') {
        if (at + 3 > length || !digits(text + at + 1, 2, &second))
            return false;
        at += 3;
        if (at < length && (text[at] == '.' || text[at] == ',')) {
            size_t start = ++at;
            while (at < length && isdigit((unsigned char)text[at]))
                at++;
            if (at == start)
                return false;
        }
    }
    if (year < 1 || month < 1 || month > 12 || day < 1 || day > days_in_month(year, month) ||
        hour > 23 || minute > 59 || second > 59)
        return false;
    int offset = 0;
    size_t rest = length - at;
    if (rest == 1 && (text[at] == 'Z' || text[at] == 'z')) {
        offset = 0;
    } else if ((rest == 6 || rest == 5) && (text[at] == '+' || text[at] == '-')) {
        int hours, minutes;
        const char *zone = text + at + 1;
        if (!digits(zone, 2, &hours))
            return false;
        if (rest == 6 ? (zone[2] != ':' || !digits(zone + 3, 2, &minutes))
                      : !digits(zone + 2, 2, &minutes))
            return false;
        if (hours > 23 || minutes > 59)
            return false;
        offset = (hours * 60 + minutes) * 60 * (text[at] == '-' ? -1 : 1);
    } else {
        return false;
    }
    *out = days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second -
           offset;
    return true;
}

static char *format_utc(int64_t moment, const char *zone)
{
    time_t seconds = (time_t)moment;
    struct tm parts;
    if (gmtime_r(&seconds, &parts) == NULL)
        return NULL;
    return format_text("%04d-%02d-%02dT%02d:%02d:%02d%s", parts.tm_year + 1900, parts.tm_mon + 1,
                       parts.tm_mday, parts.tm_hour, parts.tm_min, parts.tm_sec, zone);
}

char *iso_time(int64_t moment)
{
    return moment == LC_NO_TIME ? NULL : format_utc(moment, "Z");
}

char *iso_time_offset(int64_t moment)
{
    return format_utc(moment, "+00:00");
}

double monotonic_seconds(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec + (double)now.tv_nsec / 1e9;
}

lc_status lc_format_time(int64_t moment, char *buffer, size_t size)
{
    if (buffer == NULL || size < 21)
        return LC_ERR_USAGE;
    buffer[0] = '\0';
    if (moment == LC_NO_TIME)
        return LC_OK;
    char *text = iso_time(moment);
    if (text == NULL)
        return LC_ERR_USAGE;
    snprintf(buffer, size, "%s", text);
    free(text);
    return LC_OK;
}
