/* What license-client-c prints, line for line what the Python CLI prints for the same
 * status or error, so scripts and people see one tool whichever kit the product embeds. */
#include "output.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const char *when(int64_t time, char *buffer)
{
    if (time == LC_NO_TIME || lc_format_time(time, buffer, 32) != LC_OK)
        return NULL;
    return buffer;
}

/* -- JSON as Python's json.dumps(indent=2, sort_keys=True) writes it ------------------------ */

static int by_key(const void *a, const void *b)
{
    return strcmp((*(cJSON *const *)a)->string, (*(cJSON *const *)b)->string);
}

static void print_string(const char *text)
{
    putchar('"');
    for (const unsigned char *c = (const unsigned char *)text; *c; c++) {
        switch (*c) {
        case '"': fputs("\\\"", stdout); break;
        case '\\': fputs("\\\\", stdout); break;
        case '\n': fputs("\\n", stdout); break;
        case '\r': fputs("\\r", stdout); break;
        case '\t': fputs("\\t", stdout); break;
        case '\b': fputs("\\b", stdout); break;
        case '\f': fputs("\\f", stdout); break;
        default:
            if (*c < 0x20)
                printf("\\u%04x", *c);
            else
                putchar(*c);
        }
    }
    putchar('"');
}

static void print_number(double value)
{
    if (value == floor(value) && fabs(value) < 1e15)
        printf("%.0f", value);
    else
        printf("%.17g", value);
}

static void print_value(const cJSON *item, int depth)
{
    if (cJSON_IsNull(item)) {
        fputs("null", stdout);
    } else if (cJSON_IsBool(item)) {
        fputs(cJSON_IsTrue(item) ? "true" : "false", stdout);
    } else if (cJSON_IsNumber(item)) {
        print_number(item->valuedouble);
    } else if (cJSON_IsString(item)) {
        print_string(item->valuestring);
    } else if (cJSON_IsArray(item) || cJSON_IsObject(item)) {
        bool object = cJSON_IsObject(item);
        int count = cJSON_GetArraySize(item);
        if (count == 0) {
            fputs(object ? "{}" : "[]", stdout);
            return;
        }
        cJSON **children = malloc(sizeof *children * (size_t)count);
        if (!children)
            abort();
        int index = 0;
        for (cJSON *child = item->child; child; child = child->next)
            children[index++] = child;
        if (object)
            qsort(children, (size_t)count, sizeof *children, by_key);
        putchar(object ? '{' : '[');
        for (index = 0; index < count; index++) {
            printf("%s\n%*s", index ? "," : "", 2 * (depth + 1), "");
            if (object) {
                print_string(children[index]->string);
                fputs(": ", stdout);
            }
            print_value(children[index], depth + 1);
        }
        printf("\n%*s%c", 2 * depth, "", object ? '}' : ']');
        free(children);
    }
}

void emit(cJSON *document)
{
    if (!document)
        abort(); /* only out of memory gets here */
    print_value(document, 0);
    putchar('\n');
    cJSON_Delete(document);
}

void emit_text(char *json)
{
    cJSON *document = json ? cJSON_Parse(json) : NULL;
    lc_free(json);
    emit(document);
}

/* -- the status ------------------------------------------------------------------------- */

static void row(const char *label, const char *value)
{
    if (value && *value)
        printf("  %-13s %s\n", label, value);
}

int show_status(const lc_status_report *report, const cli_args *args)
{
    const lc_validation *validation = report->validation;
    int code = strcmp(validation->code, LC_NOT_ACTIVATED) == 0 ? EXIT_NOT_ACTIVATED
               : validation->valid                            ? EXIT_VALID
                                                              : EXIT_INVALID;
    if (args->json) {
        char *json = NULL;
        lc_status_report_to_json(report, &json);
        emit_text(json);
        return code;
    }
    const char *where = validation->online ? "online" : "offline";
    const char *product = report->product ? report->product : "product ?";
    const char *license_id = report->license_id ? report->license_id : "?";
    const lc_lease *lease = report->lease;
    if (lease && !report->activated)
        printf("Lease %s of license %s (%s): %s, checked %s.\n", lease->lease_id, license_id,
               product, validation->code, where);
    else if (!report->activated)
        puts("Not activated on this machine.");
    else
        printf("License %s (%s): %s, checked %s.\n", license_id, product, validation->code,
               where);
    printf("  %s\n", validation->reason);

    bool held = report->activated || lease;
    char features[1024] = "";
    for (size_t i = 0; i < report->feature_count; i++) {
        size_t used = strlen(features);
        snprintf(features + used, sizeof features - used, "%s%s", i ? ", " : "",
                 report->features[i]);
    }
    char expires[32], activated[32], last_online[32], grace[32], activated_row[64] = "";
    if (when(report->activated_at, activated))
        snprintf(activated_row, sizeof activated_row, report->source ? "%s (%s)" : "%s",
                 activated, report->source);
    row("installation", report->installation_id);
    row("machine", report->machine_name);
    row("customer", report->customer_id);
    row("expires", held ? when(report->expires_at, expires) : NULL);
    row("borrowed", lease && lease->borrowed ? "yes (no heartbeat needed until then)" : NULL);
    row("features", held ? (*features ? features : "none") : NULL);
    row("activated", activated_row);
    row("last online", when(report->last_online_check, last_online));
    row("grace until", when(report->grace_until, grace));
    row("server", report->server);
    row("data folder", report->data_dir);
    return code;
}

/* -- errors ----------------------------------------------------------------------------- */

/* The error codes of the Python CLI's usage errors (exit 2) whatever lc_status carries them. */
static const char *const USAGE_CODES[] = {
    "no_server", "password_required", "bad_url", "usage_error", "product_required",
    "bad_license_id", "no_signing_keys", "not_offline_activation", "license_id_required",
};

static int exit_code(lc_status status, const char *code)
{
    switch (status) {
    case LC_ERR_NOT_ACTIVATED:
    case LC_ERR_NOT_CHECKED_OUT: return EXIT_NOT_ACTIVATED;
    case LC_ERR_INVALID_RESPONSE_FILE:
    case LC_ERR_RESPONSE_MISMATCH:
    case LC_ERR_UNTRUSTED_RESPONSE: return EXIT_FILE_REFUSED;
    case LC_ERR_SERVICE_UNAVAILABLE:
    case LC_ERR_NETWORK:
    case LC_ERR_PROTOCOL: return EXIT_UNREACHABLE;
    case LC_ERR_STORAGE:
    case LC_ERR_NO_MEMORY: return EXIT_STORAGE; /* a local failure: nothing the server said */
    case LC_ERR_USAGE:
    case LC_ERR_NO_SIGNING_KEYS:
    case LC_ERR_NOT_OFFLINE_ACTIVATION: return EXIT_USAGE;
    default: break;
    }
    for (size_t i = 0; i < sizeof USAGE_CODES / sizeof USAGE_CODES[0]; i++)
        if (strcmp(code, USAGE_CODES[i]) == 0)
            return EXIT_USAGE;
    return EXIT_REFUSED;
}

/* An ISO 8601 UTC time as the server writes it ("2030-01-15T09:15:00Z", "+00:00", fractions);
 * LC_NO_TIME for anything else. */
static int64_t parse_time(const cJSON *item)
{
    if (!cJSON_IsString(item))
        return LC_NO_TIME;
    struct tm fields = {0};
    int used = 0;
    if (sscanf(item->valuestring, "%4d-%2d-%2dT%2d:%2d:%2d%n", &fields.tm_year, &fields.tm_mon,
               &fields.tm_mday, &fields.tm_hour, &fields.tm_min, &fields.tm_sec, &used) != 6)
        return LC_NO_TIME;
    const char *rest = item->valuestring + used;
    if (*rest == '.')
        while (*++rest >= '0' && *rest <= '9')
            ;
    int offset = 0, hours = 0, minutes = 0;
    if (*rest == '+' || *rest == '-') {
        if (sscanf(rest + 1, "%2d:%2d", &hours, &minutes) != 2)
            return LC_NO_TIME;
        offset = (*rest == '+' ? 1 : -1) * (hours * 3600 + minutes * 60);
    } else if (strcmp(rest, "Z") != 0) {
        return LC_NO_TIME;
    }
    fields.tm_year -= 1900;
    fields.tm_mon -= 1;
    return (int64_t)timegm(&fields) - offset;
}

/* The message, with what the error's details add for a person (as the Python CLI). */
static void explain(lc_status status, const char *message, const cJSON *details, char *buffer,
                    size_t size)
{
    size_t used = (size_t)snprintf(buffer, size, "%s", message);
    if (used >= size)
        return;
    if (status == LC_ERR_BORROW_NOT_ALLOWED) {
        const cJSON *days = cJSON_GetObjectItemCaseSensitive(details, "max_borrow_days");
        char latest[32], until[64] = "";
        if (when(parse_time(cJSON_GetObjectItemCaseSensitive(details, "latest")), latest))
            snprintf(until, sizeof until, " (until %s)", latest);
        if (cJSON_IsNumber(days) && days->valuedouble == 0)
            snprintf(buffer + used, size - used, " This license does not lend seats.");
        else if (cJSON_IsNumber(days))
            snprintf(buffer + used, size - used, " At most %d days%s.", days->valueint, until);
    } else if (status == LC_ERR_TOO_MANY_ATTEMPTS) {
        const cJSON *retry = cJSON_GetObjectItemCaseSensitive(details, "retry_after");
        double seconds = cJSON_IsNumber(retry)   ? retry->valuedouble
                         : cJSON_IsString(retry) ? atof(retry->valuestring)
                                                 : 0;
        if (seconds > 0)
            snprintf(buffer + used, size - used, " Retry in %d s.", (int)seconds);
    }
}

static int report(const cli_args *args, lc_status status, const char *code,
                  const char *message, const char *details_json, int exit)
{
    cJSON *details = cJSON_Parse(details_json ? details_json : "{}");
    if (!cJSON_IsObject(details)) {
        cJSON_Delete(details);
        details = cJSON_CreateObject();
    }
    char text[4096];
    explain(status, message, details, text, sizeof text);
    if (args->json) {
        cJSON *error = cJSON_CreateObject();
        cJSON_AddStringToObject(error, "code", code);
        cJSON_AddStringToObject(error, "message", message);
        cJSON_AddItemToObject(error, "details", details);
        cJSON *document = cJSON_CreateObject();
        cJSON_AddItemToObject(document, "error", error);
        emit(document);
    } else {
        cJSON_Delete(details);
    }
    fprintf(stderr, "%s: %s\n", PROG, text);
    return exit;
}

int fail(lc_client *client, lc_status status, const cli_args *args, int code)
{
    const char *error_code = client ? lc_client_error_code(client) : "out_of_memory";
    const char *message = client ? lc_client_error_message(client) : "Out of memory.";
    if (!*error_code)
        error_code = "license_error";
    if (!*message)
        message = "The license request failed.";
    return report(args, status, error_code, message,
                  client ? lc_client_error_details(client) : NULL,
                  code ? code : exit_code(status, error_code));
}

int fail_usage(const cli_args *args, const char *message)
{
    return report(args, LC_ERR_USAGE, "usage_error", message, NULL, EXIT_USAGE);
}
