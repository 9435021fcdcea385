/* JSON over HTTP with libcurl: timeouts, the error envelope, and retries with exponential
 * backoff. A 502/503/504 or a network error is retried (every call of the activation API is
 * idempotent), a 4xx never is. The Python kit's transport.py, call for call. */
#include <curl/curl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "internal.h"

#define MAX_BODY (1 << 20) /* no answer of this API comes close; a bigger one is not ours */
#define MAX_BACKOFF 5.0
#define BACKOFF 0.5

typedef struct answer_buffer {
    char *data;
    size_t length;
    bool too_big;
    double retry_after; /* seconds; negative when the server gave none */
} answer_buffer;

/* The error codes of the API and what they mean to a program; the default message is what
 * the Python kit says when the server gave none. */
static const struct {
    const char *code;
    lc_status status;
    const char *message;
} SERVER_ERRORS[] = {
    {"invalid_credentials", LC_ERR_INVALID_CREDENTIALS, "The license ID or the password is wrong."},
    {"no_seats_available", LC_ERR_NO_SEATS, "Every seat of this license is in use."},
    {"license_expired", LC_ERR_LICENSE_EXPIRED, "The license has expired."},
    {"license_suspended", LC_ERR_LICENSE_SUSPENDED, "The license is suspended."},
    {"wrong_product", LC_ERR_WRONG_PRODUCT, "The license is for another product."},
    {"too_many_attempts", LC_ERR_TOO_MANY_ATTEMPTS, "Too many attempts; try again later."},
    {"validation_error", LC_ERR_VALIDATION, "The request was not valid."},
    {"bad_request", LC_ERR_VALIDATION, "The request was not valid."},
    {"invalid_json", LC_ERR_VALIDATION, "The request was not valid."},
    {"service_unavailable", LC_ERR_SERVICE_UNAVAILABLE,
     "The licensing service is unavailable; try again later."},
    {"node_locked_license", LC_ERR_NODE_LOCKED,
     "This license is node-locked: activate it instead."},
    {"floating_license", LC_ERR_FLOATING, "This license is floating: check out a lease instead."},
    {"borrow_not_allowed", LC_ERR_BORROW_NOT_ALLOWED,
     "This license does not allow borrowing a seat that long."},
    {"lease_expired", LC_ERR_LEASE_EXPIRED, "The lease has ended; check out again."},
    {"invalid_lease_token", LC_ERR_INVALID_LEASE_TOKEN,
     "The lease is unknown or its token was replaced."},
};

bool is_fallback_error(lc_status status)
{
    return status == LC_ERR_SERVICE_UNAVAILABLE || status == LC_ERR_NETWORK ||
           status == LC_ERR_PROTOCOL || status == LC_ERR_TOO_MANY_ATTEMPTS;
}

lc_status api_open(lc_client *client, const char *stored, api *out)
{
    memset(out, 0, sizeof *out);
    const char *base = client->server ? client->server : stored;
    /* else the server this installation was last activated with, kept beyond a deactivation */
    char *remembered = base == NULL ? state_server(client) : NULL;
    if (remembered != NULL)
        base = remembered;
    if (base == NULL || base[0] == '\0')
        return client_fail(client, LC_ERR_USAGE, "no_server", NULL,
                           "This installation knows no license server yet: give the License "
                           "Portal's URL (license-client --server URL, or $LICENSE_SERVER_URL).");
    size_t length = strlen(base);
    while (length > 0 && base[length - 1] == '/')
        length--;
    out->base_url = strndup(base, length);
    free(remembered);
    if (out->base_url == NULL)
        return client_fail_oom(client);
    out->timeout_ms = client->timeout_ms;
    out->retries = client->retries;
    return LC_OK;
}

void api_close(api *api)
{
    free(api->base_url);
    api->base_url = NULL;
}

static size_t on_body(char *data, size_t size, size_t count, void *user)
{
    answer_buffer *buffer = user;
    size_t length = size * count;
    if (buffer->length + length > MAX_BODY) {
        buffer->too_big = true;
        return 0;
    }
    char *grown = realloc(buffer->data, buffer->length + length + 1);
    if (grown == NULL)
        return 0;
    memcpy(grown + buffer->length, data, length);
    buffer->length += length;
    grown[buffer->length] = '\0';
    buffer->data = grown;
    return length;
}

/* Seconds from a Retry-After header: delta-seconds or an HTTP date. */
static size_t on_header(char *data, size_t size, size_t count, void *user)
{
    answer_buffer *buffer = user;
    size_t length = size * count;
    static const char name[] = "retry-after:";
    if (length > sizeof name - 1 && strncasecmp(data, name, sizeof name - 1) == 0) {
        char value[128];
        size_t n = length - (sizeof name - 1);
        if (n >= sizeof value)
            n = sizeof value - 1;
        memcpy(value, data + sizeof name - 1, n);
        value[n] = '\0';
        char *start = value;
        while (*start == ' ' || *start == '\t')
            start++;
        char *end;
        double seconds = strtod(start, &end);
        if (end != start && (*end == '\r' || *end == '\n' || *end == '\0') && seconds >= 0) {
            buffer->retry_after = seconds;
        } else {
            time_t when = curl_getdate(start, NULL);
            if (when != -1)
                buffer->retry_after = fmax(0.0, difftime(when, time(NULL)));
        }
    }
    return length;
}

static void sleep_seconds(double seconds)
{
    struct timespec wait = {(time_t)seconds, (long)((seconds - floor(seconds)) * 1e9)};
    while (nanosleep(&wait, &wait) != 0) {
    }
}

char *describe_machines(const cJSON *details)
{
    static const char *const KEYS[] = {"machine_names", "machines", "installations",
                                       "active_installations"};
    const cJSON *list = NULL;
    for (size_t i = 0; i < sizeof KEYS / sizeof *KEYS && list == NULL; i++) {
        const cJSON *value = cJSON_GetObjectItemCaseSensitive(details, KEYS[i]);
        if (cJSON_IsArray(value))
            list = value;
    }
    char *text = strdup("");
    const cJSON *item;
    cJSON_ArrayForEach(item, list)
    {
        const char *name = cJSON_IsString(item) ? item->valuestring : json_str(item, "machine_name");
        if (name == NULL && cJSON_IsObject(item))
            name = json_str(item, "name");
        if (name == NULL || name[0] == '\0' || text == NULL)
            continue;
        int64_t until;
        char when[32] = "";
        if (cJSON_IsObject(item) && parse_time(json_any_str(item, "expires_at"), &until)) {
            char *iso = iso_time(until);
            if (iso != NULL)
                snprintf(when, sizeof when, "%.10s %.5s UTC", iso, iso + 11);
            free(iso);
        }
        char *grown = format_text(
            "%s%s%s%s%s%s%s", text, text[0] ? ", " : "", name, when[0] ? " (" : "",
            when[0] ? (json_is_true(item, "borrowed") ? "borrowed until " : "until ") : "", when,
            when[0] ? ")" : "");
        free(text);
        text = grown;
    }
    return text;
}

/* "license L-7KQX-M2PD" from an error's details, else "this license"; `capital`: as a
 * sentence's start. */
static char *license_words(const cJSON *details, bool capital)
{
    const char *license = json_str(details, "license_id");
    if (license != NULL)
        return format_text("%s %s", capital ? "License" : "license", license);
    return strdup(capital ? "This license" : "this license");
}

/* The message a person at this machine needs (what happened, since when, what to do next),
 * as the Python kit's errors explain it; NULL: the server's own message says it. */
static char *explain(const char *code, const char *message, const cJSON *details,
                     const char *portal)
{
    char *at = format_text(" (%s)", portal);
    char *text = NULL;
    if (at == NULL)
        return NULL;
    if (strcmp(code, "no_seats_available") == 0) {
        const cJSON *seats = cJSON_GetObjectItemCaseSensitive(details, "seats");
        int count = cJSON_IsNumber(seats) ? seats->valueint : 0;
        char *subject = count == 1  ? strdup("The one seat")
                        : count > 1 ? format_text("All %d seats", count)
                                    : strdup("Every seat");
        char *license = license_words(details, false);
        char *machines = describe_machines(details);
        if (subject != NULL && license != NULL && machines != NULL)
            text = format_text("%s of %s %s in use%s%s%s: ask your administrator to free a seat "
                               "in the portal%s.",
                               subject, license, count > 1 ? "are" : "is",
                               machines[0] ? " (on " : "", machines, machines[0] ? ")" : "", at);
        free(subject);
        free(license);
        free(machines);
    } else if (strcmp(code, "license_expired") == 0) {
        int64_t expired;
        char *license = license_words(details, true);
        char *iso = parse_time(json_any_str(details, "expires_at"), &expired) ? iso_time(expired)
                                                                               : NULL;
        if (license != NULL)
            text = format_text("%s expired%s%.10s%s%.5s%s: renew it in the portal%s, then try "
                               "again.",
                               license, iso ? " on " : "", iso ? iso : "", iso ? " " : "",
                               iso ? iso + 11 : "", iso ? " UTC" : "", at);
        free(license);
        free(iso);
    } else if (strcmp(code, "license_suspended") == 0) {
        char *license = license_words(details, true);
        if (license != NULL)
            text = format_text("%s is suspended: contact your vendor.", license);
        free(license);
    } else if (strcmp(code, "wrong_product") == 0) {
        text = format_text("%s No seat was taken: use a license of this product, or check the "
                           "product code this program is configured with.",
                           message);
    }
    free(at);
    return text;
}

/* The error of an HTTP error answer: its envelope's code, else its status. */
static lc_status answer_error(lc_client *client, const api *api, long http_status, cJSON *body,
                              double retry_after)
{
    const cJSON *envelope = json_obj(body, "error");
    const char *code = json_any_str(envelope, "code");
    lc_status status;
    if (code != NULL) {
        const char *message = json_any_str(envelope, "message");
        status = http_status >= 502 && http_status <= 504 ? LC_ERR_SERVICE_UNAVAILABLE
                                                          : LC_ERR_SERVER;
        const char *fallback = status == LC_ERR_SERVICE_UNAVAILABLE
                                   ? "The licensing service is unavailable; try again later."
                                   : "The license request failed.";
        for (size_t i = 0; i < sizeof SERVER_ERRORS / sizeof *SERVER_ERRORS; i++) {
            if (strcmp(SERVER_ERRORS[i].code, code) == 0) {
                status = SERVER_ERRORS[i].status;
                fallback = SERVER_ERRORS[i].message;
            }
        }
        cJSON *details = json_obj(envelope, "details");
        details = details != NULL ? cJSON_Duplicate(details, true) : cJSON_CreateObject();
        if (details != NULL && retry_after >= 0 &&
            cJSON_GetObjectItemCaseSensitive(details, "retry_after") == NULL &&
            (status == LC_ERR_TOO_MANY_ATTEMPTS || status == LC_ERR_SERVICE_UNAVAILABLE))
            cJSON_AddNumberToObject(details, "retry_after", retry_after);
        char *explained = explain(code, message ? message : fallback, details, api->base_url);
        status = client_fail(client, status, code, details, "%s",
                             explained ? explained : message ? message : fallback);
        free(explained);
    } else if (http_status >= 502 && http_status <= 504) {
        status = client_fail(client, LC_ERR_SERVICE_UNAVAILABLE, "service_unavailable", NULL,
                             "The licensing service is unavailable; try again later.");
    } else if (http_status == 429) {
        status = client_fail(client, LC_ERR_TOO_MANY_ATTEMPTS, "too_many_attempts", NULL,
                             "Too many attempts; try again later.");
    } else {
        status = client_fail(client, LC_ERR_PROTOCOL, "unexpected_response", NULL,
                             "The license server answered HTTP %ld without an error body.",
                             http_status);
    }
    client->error_http_status = (int)http_status;
    return status;
}

static lc_status call_once(lc_client *client, const api *api, const char *method,
                           const char *url, const char *body, const char *bearer,
                           cJSON **answer, double *retry_after)
{
    *answer = NULL;
    *retry_after = -1;
    CURL *curl = curl_easy_init();
    if (curl == NULL)
        return client_fail_oom(client);
    answer_buffer buffer = {NULL, 0, false, -1};
    struct curl_slist *headers = NULL;
    char *authorization = bearer ? format_text("Authorization: Bearer %s", bearer) : NULL;
    headers = curl_slist_append(headers, "Accept: application/json");
    if (body != NULL)
        headers = curl_slist_append(headers, "Content-Type: application/json");
    if (authorization != NULL)
        headers = curl_slist_append(headers, authorization);
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_USERAGENT, "license-client-c/" LC_VERSION);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L); /* signals are the program's, and threads */
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
#else /* before curl 7.85 */
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, api->timeout_ms);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, api->timeout_ms);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &buffer);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, &buffer);
    if (body != NULL) {
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    }
    CURLcode result = curl_easy_perform(curl);
    long http_status = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &http_status);
    curl_easy_cleanup(curl);
    curl_slist_free_all(headers);
    free(authorization);
    lc_status status = LC_OK;
    if (result != CURLE_OK && !(result == CURLE_WRITE_ERROR && buffer.too_big)) {
        status = client_fail(client, LC_ERR_NETWORK, "network_error", NULL,
                             "The license server at %s could not be reached: %s", api->base_url,
                             curl_easy_strerror(result));
    } else {
        cJSON *data = buffer.too_big ? NULL : json_parse(buffer.data, buffer.length);
        bool blank = true;
        for (size_t i = 0; i < buffer.length && blank; i++)
            blank = buffer.data[i] == ' ' || buffer.data[i] == '\t' || buffer.data[i] == '\n' ||
                    buffer.data[i] == '\r';
        if (http_status >= 200 && http_status < 300) {
            if (data == NULL && !blank)
                status = client_fail(client, LC_ERR_PROTOCOL, "unexpected_response", NULL,
                                     "The license server answered HTTP %ld with a non-JSON body.",
                                     http_status);
            else {
                *answer = data;
                data = NULL;
            }
        } else {
            status = answer_error(client, api, http_status, data, buffer.retry_after);
            *retry_after = buffer.retry_after;
        }
        cJSON_Delete(data);
    }
    free(buffer.data);
    return status;
}

lc_status api_call(lc_client *client, const api *api, const char *method, const char *path,
                   const cJSON *payload, const char *bearer, cJSON **answer)
{
    *answer = NULL;
    if (strncasecmp(api->base_url, "http://", 7) != 0 &&
        strncasecmp(api->base_url, "https://", 8) != 0)
        return client_fail(client, LC_ERR_USAGE, "bad_url", NULL,
                           "the server URL must be http(s): '%s'", api->base_url);
    char *url = format_text("%s%s", api->base_url, path);
    char *body = payload != NULL ? cJSON_PrintUnformatted(payload) : NULL;
    if (url == NULL || (payload != NULL && body == NULL)) {
        free(url);
        cJSON_free(body);
        return client_fail_oom(client);
    }
    lc_status status;
    for (int attempt = 0;; attempt++) {
        double retry_after;
        status = call_once(client, api, method, url, body, bearer, answer, &retry_after);
        if ((status != LC_ERR_SERVICE_UNAVAILABLE && status != LC_ERR_NETWORK) ||
            attempt >= api->retries)
            break;
        double delay;
        if (retry_after >= 0) {
            delay = fmin(MAX_BACKOFF, retry_after);
        } else {
            /* jitter, so that many clients that lost the server do not return in lockstep */
            double ceiling = fmin(MAX_BACKOFF, BACKOFF * pow(2, attempt));
            delay = ceiling / 2 + random_fraction() * ceiling / 2;
        }
        sleep_seconds(delay);
    }
    free(url);
    cJSON_free(body);
    return status;
}
