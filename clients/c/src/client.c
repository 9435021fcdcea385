/* The handle: options, the last error, the installation ID and the data folder. The Python
 * kit's client.py is the reference for all of the library: the same files, the same checks
 * in the same order, the same verdicts. */
#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void init_curl(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* -- the handle ------------------------------------------------------------------------ */

lc_status lc_client_new(lc_client **out)
{
    if (out == NULL)
        return LC_ERR_USAGE;
    *out = NULL;
    pthread_once(&curl_once, init_curl);
    lc_client *client = calloc(1, sizeof *client);
    if (client == NULL)
        return LC_ERR_NO_MEMORY;
    client->timeout_ms = 10000;
    client->retries = 3;
    client->grace_period = 7 * 86400;
    client->clock_tolerance = 3600;
    client->remember_password = true;
    client->lease_lock_fd = -1;
    *out = client;
    return LC_OK;
}

void lc_client_free(lc_client *client)
{
    if (client == NULL)
        return;
    leases_at_exit(client);
    keeper_clear(&client->keeper);
    free(client->server);
    free(client->product);
    free(client->name_space);
    free(client->data_dir_option);
    free(client->installation_option);
    keyset_free(client->pinned);
    free(client->data_dir);
    free(client->installation_id);
    free(client->error_message);
    free(client->error_code);
    free(client->error_details);
    free(client);
}

const char *lc_client_error_message(const lc_client *client)
{
    return client != NULL && client->error_message != NULL ? client->error_message : "";
}

const char *lc_client_error_code(const lc_client *client)
{
    return client != NULL && client->error_code != NULL ? client->error_code : "";
}

const char *lc_client_error_details(const lc_client *client)
{
    return client != NULL && client->error_details != NULL ? client->error_details : "{}";
}

int lc_client_error_http_status(const lc_client *client)
{
    return client != NULL ? client->error_http_status : 0;
}

void client_clear_error(lc_client *client)
{
    free(client->error_message);
    free(client->error_code);
    free(client->error_details);
    client->error_message = client->error_code = client->error_details = NULL;
    client->error_http_status = 0;
}

lc_status client_fail(lc_client *client, lc_status status, const char *code, cJSON *details,
                      const char *format, ...)
{
    client_clear_error(client);
    va_list args;
    va_start(args, format);
    int length = vsnprintf(NULL, 0, format, args);
    va_end(args);
    client->error_message = length >= 0 ? malloc((size_t)length + 1) : NULL;
    if (client->error_message != NULL) {
        va_start(args, format);
        vsnprintf(client->error_message, (size_t)length + 1, format, args);
        va_end(args);
    }
    client->error_code = strdup(code);
    client->error_details = details != NULL ? cJSON_PrintUnformatted(details) : NULL;
    cJSON_Delete(details);
    return status;
}

lc_status client_fail_oom(lc_client *client)
{
    return client_fail(client, LC_ERR_NO_MEMORY, "out_of_memory", NULL, "Out of memory.");
}

int64_t client_now(lc_client *client)
{
    return client->clock != NULL ? client->clock(client->clock_data) : (int64_t)time(NULL);
}

const char *lc_status_name(lc_status status)
{
    static const char *const NAMES[] = {
        "OK", "ERR_USAGE", "ERR_NO_MEMORY", "ERR_INVALID_CREDENTIALS", "ERR_NO_SEATS",
        "ERR_LICENSE_EXPIRED", "ERR_LICENSE_SUSPENDED", "ERR_WRONG_PRODUCT",
        "ERR_TOO_MANY_ATTEMPTS", "ERR_VALIDATION", "ERR_NODE_LOCKED", "ERR_FLOATING",
        "ERR_BORROW_NOT_ALLOWED", "ERR_LEASE_EXPIRED", "ERR_INVALID_LEASE_TOKEN",
        "ERR_SERVICE_UNAVAILABLE", "ERR_NETWORK", "ERR_PROTOCOL", "ERR_INVALID_CERTIFICATE",
        "ERR_NOT_ACTIVATED", "ERR_NOT_CHECKED_OUT", "ERR_STORAGE", "ERR_INVALID_RESPONSE_FILE",
        "ERR_RESPONSE_MISMATCH", "ERR_UNTRUSTED_RESPONSE", "ERR_NOT_OFFLINE_ACTIVATION",
        "ERR_NO_SIGNING_KEYS", "ERR_SERVER"};
    if ((unsigned)status < sizeof NAMES / sizeof *NAMES)
        return NAMES[status];
    return "UNKNOWN";
}

/* -- options --------------------------------------------------------------------------- */

/* An option's text: NULL or "" unsets it (as None or "" does in Python). */
static lc_status set_text(lc_client *client, char **field, const char *value)
{
    if (client == NULL)
        return LC_ERR_USAGE;
    client_clear_error(client);
    char *copy = NULL;
    if (value != NULL && value[0] != '\0') {
        copy = strdup(value);
        if (copy == NULL)
            return client_fail_oom(client);
    }
    free(*field);
    *field = copy;
    /* what is derived from the options is derived again */
    free(client->data_dir);
    free(client->installation_id);
    client->data_dir = client->installation_id = NULL;
    return LC_OK;
}

lc_status lc_client_set_server(lc_client *client, const char *url)
{
    lc_status status = set_text(client, &client->server, url);
    if (status != LC_OK || client->server == NULL)
        return status;
    size_t length = strlen(client->server);
    while (length > 0 && client->server[length - 1] == '/')
        client->server[--length] = '\0';
    return LC_OK;
}

lc_status lc_client_set_product(lc_client *client, const char *product)
{
    return set_text(client, &client->product, product);
}

lc_status lc_client_set_namespace(lc_client *client, const char *name_space)
{
    return set_text(client, &client->name_space, name_space);
}

lc_status lc_client_set_data_dir(lc_client *client, const char *path)
{
    return set_text(client, &client->data_dir_option, path);
}

lc_status lc_client_set_installation_id(lc_client *client, const char *installation_id)
{
    return set_text(client, &client->installation_option, installation_id);
}

static lc_status set_pinned(lc_client *client, const char *text, size_t length,
                            const char *where)
{
    keyset *keys;
    jws_error error;
    if (!keyset_from_text(text, length, &keys, &error)) {
        if (error.reason == NULL)
            return client_fail_oom(client);
        return client_fail(client, LC_ERR_USAGE, "usage_error", NULL, "The pinned JWKS%s%s: %s.",
                           where ? " " : "", where ? where : "", error.message);
    }
    if (keys->count == 0) {
        keyset_free(keys);
        return client_fail(client, LC_ERR_USAGE, "usage_error", NULL,
                           "The pinned JWKS%s%s holds no Ed25519 key.", where ? " " : "",
                           where ? where : "");
    }
    keyset_free(client->pinned);
    client->pinned = keys;
    return LC_OK;
}

lc_status lc_client_set_jwks_file(lc_client *client, const char *path)
{
    if (client == NULL)
        return LC_ERR_USAGE;
    client_clear_error(client);
    if (path == NULL) {
        keyset_free(client->pinned);
        client->pinned = NULL;
        return LC_OK;
    }
    size_t length;
    char *text = read_text_file(path, 1 << 20, &length);
    if (text == NULL)
        return client_fail(client, LC_ERR_USAGE, "usage_error", NULL, "Cannot read %s: %s.",
                           path, strerror(errno));
    lc_status status = set_pinned(client, text, length, path);
    free(text);
    return status;
}

lc_status lc_client_set_jwks_text(lc_client *client, const char *jwks_json)
{
    if (client == NULL)
        return LC_ERR_USAGE;
    client_clear_error(client);
    if (jwks_json == NULL) {
        keyset_free(client->pinned);
        client->pinned = NULL;
        return LC_OK;
    }
    return set_pinned(client, jwks_json, strlen(jwks_json), NULL);
}

static lc_status usage(lc_client *client, const char *message)
{
    return client_fail(client, LC_ERR_USAGE, "usage_error", NULL, "%s", message);
}

lc_status lc_client_set_timeout_ms(lc_client *client, long timeout_ms)
{
    if (client == NULL)
        return LC_ERR_USAGE;
    client_clear_error(client);
    if (timeout_ms <= 0)
        return usage(client, "The timeout must be positive.");
    client->timeout_ms = timeout_ms;
    return LC_OK;
}

lc_status lc_client_set_retries(lc_client *client, int retries)
{
    if (client == NULL)
        return LC_ERR_USAGE;
    client_clear_error(client);
    client->retries = retries > 0 ? retries : 0;
    return LC_OK;
}

/* The longest grace period or clock tolerance: added to and subtracted from times, a larger
 * one would overflow (and means "forever" anyway). */
#define MAX_PERIOD ((int64_t)100 * 366 * 86400)

lc_status lc_client_set_grace_period(lc_client *client, int64_t seconds)
{
    if (client == NULL)
        return LC_ERR_USAGE;
    client_clear_error(client);
    if (seconds < 0)
        return usage(client, "The grace period cannot be negative.");
    if (seconds > MAX_PERIOD)
        return usage(client, "The grace period cannot be longer than 100 years.");
    client->grace_period = seconds;
    return LC_OK;
}

lc_status lc_client_set_clock_tolerance(lc_client *client, int64_t seconds)
{
    if (client == NULL)
        return LC_ERR_USAGE;
    client_clear_error(client);
    if (seconds < 0)
        return usage(client, "The clock tolerance cannot be negative.");
    if (seconds > MAX_PERIOD)
        return usage(client, "The clock tolerance cannot be longer than 100 years.");
    client->clock_tolerance = seconds;
    return LC_OK;
}

lc_status lc_client_set_remember_password(lc_client *client, bool remember)
{
    if (client == NULL)
        return LC_ERR_USAGE;
    client_clear_error(client);
    client->remember_password = remember;
    return LC_OK;
}

lc_status lc_client_set_clock(lc_client *client, lc_clock_fn clock, void *user_data)
{
    if (client == NULL)
        return LC_ERR_USAGE;
    client_clear_error(client);
    client->clock = clock;
    client->clock_data = user_data;
    return LC_OK;
}

/* -- identity and the data folder ------------------------------------------------------ */

/* `text` as one harmless path component (storage.py's safe_name). */
static char *safe_name(const char *text)
{
    size_t length = strlen(text);
    char *out = malloc(length + 8);
    if (out == NULL)
        return NULL;
    size_t used = 0;
    bool dash = false;
    for (const char *p = text; *p != '\0'; p++) {
        unsigned char c = (unsigned char)*p;
        if (isalnum(c) || c == '.' || c == '_' || c == '-') {
            out[used++] = (char)c;
            dash = false;
        } else if (!dash) {
            out[used++] = '-';
            dash = true;
        }
    }
    out[used] = '\0';
    size_t start = 0;
    while (out[start] == '.' || out[start] == '-')
        start++;
    while (used > start && (out[used - 1] == '.' || out[used - 1] == '-'))
        out[--used] = '\0';
    memmove(out, out + start, used - start + 1);
    if (strlen(out) > 100)
        out[100] = '\0';
    if (out[0] == '\0')
        strcpy(out, "default");
    return out;
}

static char *expand_user(const char *path)
{
    if (path[0] != '~' || (path[1] != '/' && path[1] != '\0'))
        return strdup(path);
    const char *home = getenv("HOME");
    return format_text("%s%s", home ? home : "", path + 1);
}

lc_status client_folder(lc_client *client, const char **out)
{
    if (client->data_dir == NULL) {
        const char *override = client->data_dir_option ? client->data_dir_option
                                                       : getenv("LICENSE_CLIENT_DATA_DIR");
        if (override != NULL && override[0] != '\0') {
            client->data_dir = expand_user(override);
        } else {
            const char *name_space = client->name_space ? client->name_space
                                     : client->product  ? client->product
                                                        : "default";
            char *name = safe_name(name_space);
            const char *xdg = getenv("XDG_DATA_HOME");
            const char *home = getenv("HOME");
            if (name == NULL)
                return client_fail_oom(client);
            /* the XDG spec: a relative path in the variable is invalid and must be ignored */
            if (xdg != NULL && xdg[0] == '/')
                client->data_dir = format_text("%s/license-client/%s", xdg, name);
            else
                client->data_dir =
                    format_text("%s/.local/share/license-client/%s", home ? home : "", name);
            free(name);
        }
        if (client->data_dir == NULL)
            return client_fail_oom(client);
    }
    *out = client->data_dir;
    return LC_OK;
}

lc_status client_installation(lc_client *client, const char **out)
{
    if (client->installation_id == NULL) {
        lc_status status = derive_installation_id(client, &client->installation_id);
        if (status != LC_OK)
            return status;
    }
    *out = client->installation_id;
    return LC_OK;
}

lc_status lc_installation_id(lc_client *client, const char **out)
{
    if (client == NULL || out == NULL)
        return LC_ERR_USAGE;
    client_clear_error(client);
    return client_installation(client, out);
}

lc_status lc_data_dir(lc_client *client, const char **out)
{
    if (client == NULL || out == NULL)
        return LC_ERR_USAGE;
    client_clear_error(client);
    return client_folder(client, out);
}

