/* Floating licenses: a lease on one seat, kept by heartbeats; borrowing a seat. The Python
 * kit's leases.py without its thread: the program calls lc_heartbeat() every
 * lease->heartbeat_interval seconds (a C library that starts threads surprises its host).
 *
 * - How long the lease lasts is judged on the monotonic clock, never by comparing the wall
 *   clock with the server's exp: the deadline is when the answer arrived plus one period.
 * - Network gap: the heartbeat backs off (state "retrying", next_heartbeat_at) for as long
 *   as the lease lasts; its end is the deadline.
 * - The lease lapsed (410 lease_expired, reason expired; or the deadline passed while the
 *   machine slept): the heartbeat checks out again at once.
 * - Ended on purpose (revoked in the portal, checked in): lost, never taken back.
 * - 401: another process of this installation checked out since and stored a new token in
 *   lease.json; the heartbeat adopts it, else the lease is lost.
 * - Lost: state "lost", a reason, the error; lease.json keeps how it ended, so offline
 *   validation does not bring it back.
 * Every read-modify-write of lease.json, and every check-out with the storing of its token,
 * holds the file's lock, so two processes of one installation never store a stale token. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define LIVE "live"
#define RETRYING "retrying"
#define BORROWED "borrowed"
#define LOST "lost"
#define NONE "none"
#define MAX_RETRY_DELAY 60.0
#define BACKOFF 0.5

static char *escape_path(const char *text)
{
    /* a lease ID in a URL path: everything but unreserved characters percent-encoded */
    char *out = malloc(strlen(text) * 3 + 1);
    if (out == NULL)
        return NULL;
    size_t used = 0;
    for (const unsigned char *p = (const unsigned char *)text; *p != '\0'; p++) {
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
            *p == '-' || *p == '_' || *p == '.' || *p == '~')
            out[used++] = (char)*p;
        else
            used += (size_t)sprintf(out + used, "%%%02X", *p);
    }
    out[used] = '\0';
    return out;
}

void keeper_clear(keeper *keeper)
{
    free(keeper->state);
    free(keeper->reason);
    free(keeper->error_code);
    free(keeper->error_message);
    free(keeper->password);
    free(keeper->machine_name);
    free(keeper->token);
    lc_lease_free(keeper->lease);
    memset(keeper, 0, sizeof *keeper);
}

static void replace_text(char **field, char *value)
{
    free(*field);
    *field = value;
}

static int64_t lease_period(const lc_lease *lease)
{
    int64_t period = lease->expires_at - lease->issued_at;
    return period > 1 ? period : 1;
}

lc_lease *held_lease(const cJSON *document, char **token)
{
    *token = NULL;
    const cJSON *record = json_obj(document, "lease");
    const char *certificate = json_any_str(record, "certificate");
    jws_token parsed;
    jws_error error;
    if (certificate == NULL || !jws_parse(certificate, &parsed, &error))
        return NULL;
    const cJSON *claims = parsed.claims;
    const char *lease_id = json_str(record, "lease_id");
    if (lease_id == NULL)
        lease_id = json_str(claims, "lease_id");
    int64_t expires, issued;
    lc_lease *lease = NULL;
    if (lease_id != NULL && claims_time(claims, "exp", &expires)) {
        lease = calloc(1, sizeof *lease);
        if (lease != NULL) {
            const char *license = json_str(claims, "license_id");
            if (license == NULL)
                license = json_str(document, "license_id");
            const char *installation = json_str(claims, "installation_id");
            lease->lease_id = strdup(lease_id);
            lease->license_id = strdup(license ? license : "");
            lease->installation_id = strdup(installation ? installation : "");
            lease->machine_name = dup_or_null(json_str(claims, "machine_name"));
            lease->certificate = strdup(certificate);
            lease->issued_at = claims_time(claims, "iat", &issued) ? issued : expires;
            lease->expires_at = expires;
            lease->borrowed = json_is_true(claims, "borrowed");
            lease->server = dup_or_null(json_str(document, "server"));
            lease->heartbeat_interval = lease_period(lease) / 3;
            *token = dup_or_null(json_str(record, "lease_token"));
            if (lease->lease_id == NULL || lease->license_id == NULL ||
                lease->installation_id == NULL || lease->certificate == NULL) {
                lc_lease_free(lease);
                free(*token);
                *token = NULL;
                lease = NULL;
            }
        }
    }
    jws_token_clear(&parsed);
    return lease;
}

static const cJSON *ended(const cJSON *document)
{
    return json_obj(json_obj(document, "lease"), "ended");
}

static cJSON *lease_record(const lc_lease *lease, const char *token, int64_t now)
{
    cJSON *record = cJSON_CreateObject();
    char *expires = iso_time(lease->expires_at);
    char *stored = iso_time(now);
    if (record == NULL || expires == NULL || stored == NULL ||
        !json_set_str(record, "lease_id", lease->lease_id) ||
        !json_set_str(record, "certificate", lease->certificate) ||
        !json_set_str(record, "lease_token", token) ||
        !json_set(record, "borrowed", cJSON_CreateBool(lease->borrowed)) ||
        !json_set_str(record, "expires_at", expires) || !json_set_str(record, "stored_at", stored)) {
        cJSON_Delete(record);
        record = NULL;
    }
    free(expires);
    free(stored);
    return record;
}

static lc_status read_leases(lc_client *client, cJSON **out)
{
    lc_status status = store_read(client, LEASE_FILE, out);
    if (status == LC_OK && *out == NULL && (*out = cJSON_CreateObject()) == NULL)
        return client_fail_oom(client);
    return status;
}

/* The lease of a check-out or heartbeat answer, from its verified certificate. */
static lc_status lease_from(lc_client *client, const api *api, const cJSON *answer,
                            const char *license_id, const char *lease_id, lc_lease **out)
{
    *out = NULL;
    if (!cJSON_IsObject(answer))
        return client_fail(client, LC_ERR_PROTOCOL, "unexpected_response", NULL,
                           "The lease answer is not a JSON object.");
    keyset *keys, *fetched = NULL;
    bool owned;
    lc_status status = trusted_keys(client, &keys, &owned);
    if (status != LC_OK)
        return status;
    if (keys->count == 0) {
        if (owned)
            keyset_free(keys);
        owned = false;
        status = fetch_keys(client, api, &fetched);
        if (status != LC_OK)
            return status;
        keys = fetched;
    }
    jws_token certificate;
    status = verify_new_certificate(client, api, keys, json_any_str(answer, "certificate"),
                                    &certificate);
    if (owned)
        keyset_free(keys);
    keyset_free(fetched);
    if (status != LC_OK)
        return status;
    const cJSON *claims = certificate.claims;
    const char *claimed = json_str(claims, "lease_id");
    int64_t expires, issued;
    if (claimed == NULL || (lease_id != NULL && strcmp(claimed, lease_id) != 0)) {
        status = client_fail(client, LC_ERR_PROTOCOL, "unexpected_response", NULL,
                             "The server's certificate is not this lease's.");
    } else if (!claims_time(claims, "exp", &expires)) {
        status = client_fail(client, LC_ERR_PROTOCOL, "unexpected_response", NULL,
                             "The lease certificate has no expiry.");
    } else {
        const char *installation;
        status = client_installation(client, &installation);
        lc_lease *lease = status == LC_OK ? calloc(1, sizeof *lease) : NULL;
        if (lease != NULL) {
            const char *license = json_str(claims, "license_id");
            const char *named = json_str(claims, "installation_id");
            const char *machine = json_str(claims, "machine_name");
            if (machine == NULL)
                machine = json_str(json_obj(answer, "lease"), "machine_name");
            lease->lease_id = strdup(claimed);
            lease->license_id = strdup(license ? license : license_id);
            lease->installation_id = strdup(named ? named : installation);
            lease->machine_name = dup_or_null(machine);
            lease->certificate = strdup(certificate.token);
            lease->issued_at = claims_time(claims, "iat", &issued) ? issued : client_now(client);
            lease->expires_at = expires;
            lease->borrowed = json_is_true(claims, "borrowed");
            lease->server = strdup(api->base_url);
            lease->heartbeat_interval = lease_period(lease) / 3;
            if (lease->lease_id && lease->license_id && lease->installation_id &&
                lease->certificate && lease->server)
                *out = lease;
            else
                lc_lease_free(lease);
        }
        if (status == LC_OK && *out == NULL)
            status = client_fail_oom(client);
    }
    jws_token_clear(&certificate);
    return status;
}

/* DELETE the lease; one it no longer is (ended, token replaced) counts as returned. */
static lc_status return_lease(lc_client *client, const lc_lease *lease, const char *token,
                              bool one_try)
{
    api api;
    lc_status status = api_open(client, lease->server, &api);
    if (status != LC_OK)
        return status;
    if (one_try)
        api.retries = 0;
    char *id = escape_path(lease->lease_id);
    char *path = id ? format_text("/api/v1/leases/%s", id) : NULL;
    cJSON *answer = NULL;
    status = path ? api_call(client, &api, "DELETE", path, NULL, token, &answer)
                  : client_fail_oom(client);
    if (status == LC_ERR_LEASE_EXPIRED || status == LC_ERR_INVALID_LEASE_TOKEN) {
        client_clear_error(client);
        status = LC_OK;
    }
    cJSON_Delete(answer);
    free(id);
    free(path);
    api_close(&api);
    return status;
}

static lc_status request_lease(lc_client *client, const api *api, const char *license_id,
                               const char *password, const char *machine_name,
                               int64_t borrow_until, lc_lease **out, char **token)
{
    *out = NULL;
    *token = NULL;
    const char *installation;
    lc_status status = client_installation(client, &installation);
    if (status != LC_OK)
        return status;
    cJSON *payload = cJSON_CreateObject();
    char *until = borrow_until != LC_NO_TIME ? iso_time(borrow_until) : NULL;
    if (payload == NULL || !json_set_str(payload, "license_id", license_id) ||
        !json_set_str(payload, "password", password) ||
        !json_set_str(payload, "installation_id", installation) ||
        !json_set_str(payload, "machine_name", machine_name) ||
        (client->product != NULL && !json_set_str(payload, "product", client->product)) ||
        (borrow_until != LC_NO_TIME && (until == NULL || !json_set_str(payload, "borrow_until", until)))) {
        cJSON_Delete(payload);
        free(until);
        return client_fail_oom(client);
    }
    free(until);
    cJSON *answer = NULL;
    status = api_call(client, api, "POST", "/api/v1/leases", payload, NULL, &answer);
    cJSON_Delete(payload);
    if (status != LC_OK)
        return status;
    const char *given = json_str(answer, "lease_token");
    lc_lease *lease = NULL;
    if (given == NULL)
        status = client_fail(client, LC_ERR_PROTOCOL, "unexpected_response", NULL,
                             "The check-out answer has no lease token.");
    else
        status = lease_from(client, api, answer, license_id, NULL, &lease);
    char *kept = status == LC_OK ? strdup(given) : NULL;
    cJSON_Delete(answer);
    if (status != LC_OK)
        return status;
    if (kept == NULL) {
        lc_lease_free(lease);
        return client_fail_oom(client);
    }
    jws_token parsed;
    jws_error error;
    const char *product = NULL;
    if (jws_parse(lease->certificate, &parsed, &error))
        product = claims_product(parsed.claims);
    if (client->product != NULL && !same_product(product, client->product)) {
        /* a server that did not check the product: give the seat back at once */
        char *message = format_text("License %s is for product %s%s%s, not '%s'; its seat was "
                                    "given back.",
                                    license_id, product ? "'" : "", product ? product : "None",
                                    product ? "'" : "", client->product);
        cJSON *details = cJSON_CreateObject();
        bool ok = message != NULL && details != NULL &&
                  json_set_str(details, "license_id", license_id) &&
                  json_set_str(details, "product", product) &&
                  json_set_str(details, "requested", client->product);
        jws_token_clear(&parsed);
        return_lease(client, lease, kept, true);
        lc_lease_free(lease);
        free(kept);
        if (!ok) {
            free(message);
            cJSON_Delete(details);
            return client_fail_oom(client);
        }
        status = client_fail(client, LC_ERR_WRONG_PRODUCT, "wrong_product", details, "%s",
                             message);
        free(message);
        return status;
    }
    jws_token_clear(&parsed);
    *out = lease;
    *token = kept;
    return LC_OK;
}

static lc_status save_lease(lc_client *client, const lc_lease *lease, const char *token,
                            const char *license_id, const char *password,
                            const char *machine_name)
{
    cJSON *document = cJSON_CreateObject();
    cJSON *record = lease_record(lease, token, client_now(client));
    if (document == NULL || record == NULL ||
        !json_set(document, "version", cJSON_CreateNumber(1)) ||
        !json_set_str(document, "server", lease->server) ||
        !json_set_str(document, "license_id", license_id) ||
        !json_set_str(document, "machine_name", machine_name) ||
        !json_set(document, "lease", record) ||
        (client->remember_password && !json_set_str(document, "password", password))) {
        cJSON_Delete(document);
        return client_fail_oom(client);
    }
    lc_status status = store_write(client, LEASE_FILE, document);
    cJSON_Delete(document);
    return status;
}

/* A renewed lease into lease.json (the heartbeat keeps going if the folder is read-only), with
 * the file's lock held. After a heartbeat (not `rotated`), a different token stored for the
 * same lease is newer than ours (another process checked out since): it stays, and is
 * adopted. */
static void save_quietly(lc_client *client, bool rotated)
{
    keeper *keeper = &client->keeper;
    cJSON *document = NULL;
    if (read_leases(client, &document) != LC_OK) {
        client_clear_error(client);
        return;
    }
    char *stored_token;
    lc_lease *stored = held_lease(document, &stored_token);
    if (!rotated && stored != NULL && strcmp(stored->lease_id, keeper->lease->lease_id) == 0 &&
        stored_token != NULL && strcmp(stored_token, keeper->token) != 0) {
        replace_text(&keeper->token, stored_token);
        stored_token = NULL;
    }
    free(stored_token);
    lc_lease_free(stored);
    cJSON *record = lease_record(keeper->lease, keeper->token, client_now(client));
    if (record != NULL && json_set(document, "lease", record)) {
        if (cJSON_GetObjectItemCaseSensitive(document, "version") == NULL)
            json_set(document, "version", cJSON_CreateNumber(1));
        if (cJSON_GetObjectItemCaseSensitive(document, "license_id") == NULL)
            json_set_str(document, "license_id", keeper->lease->license_id);
        store_write(client, LEASE_FILE, document);
    }
    client_clear_error(client);
    cJSON_Delete(document);
}

static void set_state(keeper *keeper, const char *state, char *reason)
{
    replace_text(&keeper->state, strdup(state));
    replace_text(&keeper->reason, reason);
}

static void keep_error(keeper *keeper, const lc_client *client)
{
    replace_text(&keeper->error_code, strdup(lc_client_error_code(client)));
    replace_text(&keeper->error_message, strdup(lc_client_error_message(client)));
}

/* A fresh lease from the server, answered at `received` (monotonic). */
static void renewed(lc_client *client, lc_lease *lease, char *token, double received,
                    char *reason)
{
    keeper *keeper = &client->keeper;
    int64_t now = client_now(client);
    lc_lease_free(keeper->lease);
    keeper->lease = lease;
    replace_text(&keeper->token, token);
    set_state(keeper, LIVE, reason);
    replace_text(&keeper->error_code, NULL);
    replace_text(&keeper->error_message, NULL);
    keeper->attempt = 0;
    keeper->last_heartbeat_at = now;
    keeper->deadline = received + (double)lease_period(lease);
    keeper->next_at = now + lease->heartbeat_interval;
}

/* The lease is over for this handle: say why, and leave `code` (default by the error) in
 * lease.json for offline validation. */
static void lose(lc_client *client, lc_status error, char *reason, const char *code)
{
    keeper *keeper = &client->keeper;
    if (keeper->state != NULL && strcmp(keeper->state, LOST) == 0) {
        free(reason);
        return;
    }
    if (reason == NULL)
        reason = strdup(lc_client_error_message(client));
    keep_error(keeper, client);
    if (code == NULL)
        code = error == LC_ERR_LEASE_EXPIRED      ? LC_LEASE_EXPIRED
               : error == LC_ERR_LICENSE_SUSPENDED ? LC_SUSPENDED
               : error == LC_ERR_LICENSE_EXPIRED   ? LC_EXPIRED
                                                   : NULL;
    set_state(keeper, LOST, reason);
    keeper->next_at = LC_NO_TIME;
    store_lock(client);
    cJSON *document = NULL;
    if (code != NULL && store_read(client, LEASE_FILE, &document) == LC_OK) {
        cJSON *stored = json_obj(document, "lease");
        const cJSON *token = cJSON_GetObjectItemCaseSensitive(stored, "lease_token");
        const char *id = json_any_str(stored, "lease_id");
        if (id != NULL && strcmp(id, keeper->lease->lease_id) == 0 &&
            (token == NULL || cJSON_IsNull(token) ||
             (cJSON_IsString(token) && strcmp(token->valuestring, keeper->token) == 0))) {
            /* offline validation must not bring back a lease the server ended */
            cJSON *end = cJSON_CreateObject();
            char *at = iso_time(client_now(client));
            if (end != NULL && at != NULL && json_set_str(end, "code", code) &&
                json_set_str(end, "reason", keeper->reason) && json_set_str(end, "at", at)) {
                json_set(stored, "ended", end);
                end = NULL;
                store_write(client, LEASE_FILE, document);
            }
            cJSON_Delete(end);
            free(at);
        }
    }
    cJSON_Delete(document);
    store_unlock(client);
    client_clear_error(client);
}

/* Check out again after the lease ended; lost if that fails. */
static void renew(lc_client *client, char *cause)
{
    keeper *keeper = &client->keeper;
    api api;
    lc_lease *fresh = NULL;
    char *token = NULL;
    store_lock(client);
    lc_status status = api_open(client, keeper->lease->server, &api);
    if (status == LC_OK) {
        status = request_lease(client, &api, keeper->lease->license_id, keeper->password,
                               keeper->machine_name, LC_NO_TIME, &fresh, &token);
        api_close(&api);
    }
    if (status == LC_OK) {
        char *until = iso_time(fresh->expires_at);
        renewed(client, fresh, token, monotonic_seconds(),
                format_text("%s; checked out again until %s.", cause, until));
        free(until);
        save_quietly(client, true);
    }
    store_unlock(client);
    if (status != LC_OK)
        lose(client, status,
             format_text("%s; checking out again failed: %s", cause,
                         lc_client_error_message(client)),
             LC_LEASE_EXPIRED);
    free(cause);
}

/* After a 401: take the token another process of this installation stored for the same lease;
 * false if there is none. */
static bool adopt(lc_client *client)
{
    keeper *keeper = &client->keeper;
    bool adopted = false;
    store_lock(client);
    cJSON *document = NULL;
    if (store_read(client, LEASE_FILE, &document) == LC_OK) {
        char *token;
        lc_lease *stored = held_lease(document, &token);
        if (stored != NULL && strcmp(stored->lease_id, keeper->lease->lease_id) == 0 &&
            token != NULL && strcmp(token, keeper->token) != 0) {
            replace_text(&keeper->token, token);
            token = NULL;
            adopted = true;
        }
        free(token);
        lc_lease_free(stored);
    }
    cJSON_Delete(document);
    store_unlock(client);
    return adopted;
}

static void retry_later(lc_client *client, int64_t now)
{
    keeper *keeper = &client->keeper;
    keeper->attempt++;
    double ceiling = fmin(fmin(MAX_RETRY_DELAY, (double)keeper->lease->heartbeat_interval),
                          BACKOFF * pow(2, keeper->attempt));
    /* jitter: the clients of an office that lost the server do not return in lockstep */
    double delay = ceiling / 2 + random_fraction() * ceiling / 2;
    cJSON *details = cJSON_Parse(lc_client_error_details(client));
    const cJSON *retry_after = cJSON_GetObjectItemCaseSensitive(details, "retry_after");
    if (cJSON_IsNumber(retry_after) && retry_after->valuedouble > delay)
        delay = retry_after->valuedouble;
    cJSON_Delete(details);
    /* the lease's end is the deadline: then it is a new check-out or lost */
    double clock = monotonic_seconds();
    delay = fmax(0.0, fmin(delay, keeper->deadline - clock));
    keeper->next_at = now + (int64_t)ceil(delay);
    keep_error(keeper, client);
    char *until = iso_time(keeper->lease->expires_at);
    set_state(keeper, RETRYING,
              format_text("The license server cannot be reached (%s); retrying while the lease "
                          "lasts, until %s.",
                          lc_client_error_message(client), until));
    free(until);
    client_clear_error(client);
}

static const char *gone_words(const char *reason)
{
    if (reason != NULL && strcmp(reason, "revoked") == 0)
        return "The lease was revoked in the portal";
    if (reason != NULL && strcmp(reason, "checked_in") == 0)
        return "The lease was checked in";
    if (reason != NULL && strcmp(reason, "expired") == 0)
        return "The lease lapsed";
    return "The lease ended";
}

static void step(lc_client *client, bool adopted)
{
    keeper *keeper = &client->keeper;
    int64_t now = client_now(client);
    if (monotonic_seconds() >= keeper->deadline) { /* the machine slept, or a gap outlasted it */
        char *until = iso_time(keeper->lease->expires_at);
        renew(client, format_text("The lease lapsed at %s", until));
        free(until);
        return;
    }
    api api;
    cJSON *answer = NULL;
    lc_lease *fresh = NULL;
    lc_status status = api_open(client, keeper->lease->server, &api);
    if (status == LC_OK) {
        char *id = escape_path(keeper->lease->lease_id);
        char *path = id ? format_text("/api/v1/leases/%s/heartbeat", id) : NULL;
        status = path ? api_call(client, &api, "POST", path, NULL, keeper->token, &answer)
                      : client_fail_oom(client);
        free(id);
        free(path);
        if (status == LC_OK)
            status = lease_from(client, &api, answer, keeper->lease->license_id,
                                keeper->lease->lease_id, &fresh);
        api_close(&api);
    }
    double received = monotonic_seconds();
    cJSON_Delete(answer);
    if (status == LC_ERR_INVALID_LEASE_TOKEN) {
        if (!adopted && adopt(client)) {
            step(client, true); /* the same lease, with the other process's token */
        } else { /* checking out again would take the lease from whoever has it now */
            lose(client, status,
                 strdup("The server no longer knows this lease's token, and no other process "
                        "of this installation stored a newer one"),
                 LC_LEASE_EXPIRED);
        }
        return;
    }
    if (status == LC_ERR_LEASE_EXPIRED) {
        cJSON *details = cJSON_Parse(lc_client_error_details(client));
        const char *reason = json_any_str(details, "reason");
        const char *words = gone_words(reason);
        bool on_purpose =
            reason != NULL && (strcmp(reason, "revoked") == 0 || strcmp(reason, "checked_in") == 0);
        if (on_purpose) /* the seat was freed on purpose: leave it */
            lose(client, status, format_text("%s; it is not checked out again", words),
                 LC_LEASE_EXPIRED);
        else
            renew(client, strdup(words));
        cJSON_Delete(details);
        return;
    }
    if (status == LC_ERR_SERVICE_UNAVAILABLE || status == LC_ERR_NETWORK ||
        status == LC_ERR_PROTOCOL || status == LC_ERR_TOO_MANY_ATTEMPTS ||
        status == LC_ERR_INVALID_CERTIFICATE) {
        retry_later(client, now);
        return;
    }
    if (status != LC_OK) { /* suspended, license expired: waiting does not help */
        lose(client, status, NULL, NULL);
        return;
    }
    char *token = strdup(keeper->token);
    char *until = iso_time(fresh->expires_at);
    char *reason = adopted ? format_text("Another process of this installation checked the "
                                         "lease out again; with its token, renewed until %s.",
                                         until)
                           : format_text("Renewed until %s.", until);
    free(until);
    store_lock(client);
    renewed(client, fresh, token, received, reason);
    save_quietly(client, false);
    store_unlock(client);
}

static lc_status lease_out(lc_client *client, const lc_lease *lease, lc_lease **out)
{
    if (out == NULL)
        return LC_OK;
    *out = lease_copy(lease);
    return *out != NULL ? LC_OK : client_fail_oom(client);
}

static bool keeper_beating(const keeper *keeper)
{
    return keeper->active && keeper->state != NULL &&
           (strcmp(keeper->state, LIVE) == 0 || strcmp(keeper->state, RETRYING) == 0);
}

static lc_status checkout(lc_client *client, const char *license_id, const char *password,
                          const char *machine_name, int64_t borrow_until, lc_lease **out)
{
    keeper *keeper = &client->keeper;
    int64_t now = client_now(client);
    if (license_id != NULL && license_id[0] == '\0')
        license_id = NULL;
    if (borrow_until == LC_NO_TIME && keeper_beating(keeper) &&
        (license_id == NULL || strcmp(license_id, keeper->lease->license_id) == 0))
        return lease_out(client, keeper->lease, out);
    cJSON *document;
    lc_status status = read_leases(client, &document);
    if (status != LC_OK)
        return status;
    const char *stored_license = json_str(document, "license_id");
    bool same = license_id == NULL ||
                (stored_license != NULL && strcmp(license_id, stored_license) == 0);
    char *stored_token = NULL;
    lc_lease *stored = same ? held_lease(document, &stored_token) : NULL;
    free(stored_token);
    if (borrow_until == LC_NO_TIME && stored != NULL && stored->borrowed &&
        now < stored->expires_at && ended(document) == NULL) {
        /* a borrowed seat needs no server: this is how a laptop runs offline */
        status = lease_out(client, stored, out);
        lc_lease_free(stored);
        cJSON_Delete(document);
        return status;
    }
    lc_lease_free(stored);
    const char *license = license_id ? license_id : stored_license;
    const char *secret = password && password[0] ? password
                         : same                  ? json_str(document, "password")
                                                 : NULL;
    const char *machine = machine_name && machine_name[0] ? machine_name
                          : same                          ? json_str(document, "machine_name")
                                                          : NULL;
    char *name = machine ? strdup(machine) : host_name();
    char *license_copy = dup_or_null(license);
    char *secret_copy = dup_or_null(secret);
    const char *server = same ? json_str(document, "server") : NULL;
    api api = {0};
    lc_lease *lease = NULL;
    char *token = NULL;
    if (license == NULL) {
        status = client_fail(client, LC_ERR_USAGE, "license_id_required", NULL,
                             "No license to check out: give the license ID (and its password).");
        goto done;
    }
    if (secret == NULL) {
        status = client_fail(client, LC_ERR_USAGE, "password_required", NULL,
                             "No password is stored for this license: give it to check out.");
        goto done;
    }
    if (name == NULL || license_copy == NULL || secret_copy == NULL) {
        status = client_fail_oom(client);
        goto done;
    }
    status = api_open(client, server, &api);
    if (status != LC_OK)
        goto done;
    /* the new token and its storing are one step for the other processes of this machine */
    store_lock(client);
    status = request_lease(client, &api, license_copy, secret_copy, name, borrow_until, &lease,
                           &token);
    double received = monotonic_seconds();
    if (status == LC_OK) {
        status = save_lease(client, lease, token, license_copy, secret_copy, name);
        if (status != LC_OK) {
            /* nobody could validate or return a lease that is not stored: give it back */
            char *message = strdup(lc_client_error_message(client));
            return_lease(client, lease, token, true);
            status = client_fail(client, LC_ERR_STORAGE, "storage_error", NULL, "%s",
                                 message ? message : "");
            free(message);
        }
    }
    store_unlock(client);
    if (status != LC_OK)
        goto done;
    keeper_clear(keeper);
    status = lease_out(client, lease, out);
    if (!lease->borrowed) {
        char *until = iso_time(lease->expires_at);
        keeper->active = true;
        keeper->password = secret_copy;
        keeper->machine_name = name;
        secret_copy = name = NULL;
        renewed(client, lease, token, received, format_text("Checked out until %s.", until));
        keeper->last_heartbeat_at = LC_NO_TIME;
        lease = NULL;
        token = NULL;
        free(until);
    }
done:
    cJSON_Delete(document);
    api_close(&api);
    free(name);
    free(license_copy);
    free(secret_copy);
    free(token);
    lc_lease_free(lease);
    return status;
}

lc_status lc_checkout(lc_client *client, const char *license_id, const char *password,
                      const char *machine_name, lc_lease **out)
{
    if (client == NULL)
        return LC_ERR_USAGE;
    client_clear_error(client);
    if (out != NULL)
        *out = NULL;
    return checkout(client, license_id, password, machine_name, LC_NO_TIME, out);
}

lc_status lc_borrow(lc_client *client, double days, const char *license_id,
                    const char *password, const char *machine_name, lc_lease **out)
{
    if (client == NULL)
        return LC_ERR_USAGE;
    client_clear_error(client);
    if (out != NULL)
        *out = NULL;
    if (!(days > 0) || days > 36500)
        return client_fail(client, LC_ERR_USAGE, "usage_error", NULL,
                           "A seat is borrowed for more than 0 days.");
    int64_t until = client_now(client) + (int64_t)llround(days * 86400);
    return checkout(client, license_id, password, machine_name, until, out);
}

static lc_status status_of_keeper(lc_client *client, lc_lease_status **out)
{
    keeper *keeper = &client->keeper;
    lc_lease_status *status = calloc(1, sizeof *status);
    if (status == NULL)
        return client_fail_oom(client);
    status->state = strdup(keeper->state);
    status->reason = strdup(keeper->reason ? keeper->reason : "");
    status->lease = lease_copy(keeper->lease);
    status->held = strcmp(keeper->state, LOST) != 0;
    status->error_code = dup_or_null(keeper->error_code);
    status->error_message = dup_or_null(keeper->error_message);
    status->last_heartbeat_at = keeper->last_heartbeat_at;
    status->next_heartbeat_at = keeper->next_at;
    if (status->state == NULL || status->reason == NULL || status->lease == NULL) {
        lc_lease_status_free(status);
        return client_fail_oom(client);
    }
    *out = status;
    return LC_OK;
}

static lc_status lease_status(lc_client *client, lc_lease_status **out)
{
    *out = NULL;
    if (client->keeper.active)
        return status_of_keeper(client, out);
    cJSON *document;
    lc_status result = read_leases(client, &document);
    if (result != LC_OK)
        return result;
    char *token;
    lc_lease *lease = held_lease(document, &token);
    free(token);
    const char *state = NONE;
    char *reason;
    char *until = lease ? iso_time(lease->expires_at) : NULL;
    const cJSON *end = ended(document);
    if (lease == NULL) {
        reason = strdup("No lease is held.");
    } else if (end != NULL) {
        const char *said = json_str(end, "reason");
        reason = strdup(said ? said : "The lease has ended.");
    } else if (client_now(client) >= lease->expires_at) {
        reason = format_text("The lease ended on %s.", until);
    } else if (lease->borrowed) {
        state = BORROWED;
        reason = format_text("Borrowed until %s.", until);
    } else {
        reason = format_text("A lease until %s is stored, but no heartbeat keeps it here.", until);
    }
    free(until);
    cJSON_Delete(document);
    lc_lease_status *status = calloc(1, sizeof *status);
    if (status == NULL || reason == NULL || (status->state = strdup(state)) == NULL) {
        free(reason);
        lc_lease_free(lease);
        lc_lease_status_free(status);
        return client_fail_oom(client);
    }
    status->reason = reason;
    status->lease = lease;
    status->held = strcmp(state, BORROWED) == 0;
    *out = status;
    return LC_OK;
}

lc_status lc_lease_status_get(lc_client *client, lc_lease_status **out)
{
    if (client == NULL || out == NULL)
        return LC_ERR_USAGE;
    client_clear_error(client);
    return lease_status(client, out);
}

lc_status lc_heartbeat(lc_client *client, lc_lease_status **out)
{
    if (client == NULL)
        return LC_ERR_USAGE;
    client_clear_error(client);
    if (out != NULL)
        *out = NULL;
    if (keeper_beating(&client->keeper))
        step(client, false);
    client_clear_error(client);
    if (out == NULL)
        return LC_OK;
    return lease_status(client, out);
}

static lc_status checkin(lc_client *client, bool quiet, lc_lease **out)
{
    keeper *keeper = &client->keeper;
    lc_lease *lease = NULL;
    char *token = NULL;
    if (keeper->active) {
        lease = keeper->lease;
        token = keeper->token;
        keeper->lease = NULL;
        keeper->token = NULL;
    }
    keeper_clear(keeper);
    if (lease == NULL) {
        cJSON *document;
        lc_status status = read_leases(client, &document);
        if (status != LC_OK)
            return status;
        lease = held_lease(document, &token);
        cJSON_Delete(document);
    }
    if (lease == NULL)
        return quiet ? LC_OK
                     : client_fail(client, LC_ERR_NOT_CHECKED_OUT, "not_checked_out", NULL,
                                   "This installation holds no lease to check in.");
    lc_status status = return_lease(client, lease, token ? token : "", quiet);
    if (status == LC_OK) {
        store_lock(client);
        cJSON *document;
        status = read_leases(client, &document);
        if (status == LC_OK) {
            char *stored_token;
            lc_lease *stored = held_lease(document, &stored_token);
            free(stored_token);
            if (strcmp((stored ? stored : lease)->lease_id, lease->lease_id) == 0) {
                json_set(document, "lease", NULL);
                status = store_write(client, LEASE_FILE, document);
            }
            lc_lease_free(stored);
            cJSON_Delete(document);
        }
        store_unlock(client);
    }
    /* on failure the stored lease stays: check in again later */
    if (status == LC_OK)
        status = lease_out(client, lease, out);
    lc_lease_free(lease);
    free(token);
    return status;
}

lc_status lc_checkin(lc_client *client, lc_lease **out)
{
    if (client == NULL)
        return LC_ERR_USAGE;
    client_clear_error(client);
    if (out != NULL)
        *out = NULL;
    return checkin(client, false, out);
}

void leases_at_exit(lc_client *client)
{
    /* a lease a heartbeat keeps frees its seat now rather than at the lease's end; a
     * borrowed one stays, that is what borrowing is for */
    if (client->keeper.active && client->keeper.lease != NULL && !client->keeper.lease->borrowed)
        checkin(client, true, NULL);
}
