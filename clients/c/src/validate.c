/* Validation: offline (the certificate's signature, identity, clock, expiry, the server's
 * last verdict), online (the server's signed answer to this request), and the fallback within
 * the grace period when the server cannot be reached. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "internal.h"

/* the server's verdicts that keep holding offline until an online check says otherwise */
static const char *const STICKY_VERDICTS[] = {LC_DEACTIVATED, LC_SUSPENDED, LC_EXPIRED,
                                              LC_BAD_SIGNATURE, LC_LEASE_EXPIRED};

/* -- results --------------------------------------------------------------------------- */

lc_validation *validation_new(void)
{
    return calloc(1, sizeof(lc_validation));
}

/* The verdict; its expiry is `expires_at` when `expiry_known` (LC_NO_TIME: perpetual), else
 * the certificate's exp. */
static lc_status verdict_result(lc_client *client, int64_t now, const char *code,
                                const char *reason, const cJSON *claims, bool valid, bool online,
                                bool expiry_known, int64_t expires_at, char **features,
                                size_t feature_count, lc_validation **out)
{
    const char *installation;
    lc_status status = client_installation(client, &installation);
    if (status != LC_OK) {
        free_strings(features, feature_count);
        return status;
    }
    lc_validation *validation = validation_new();
    if (validation == NULL) {
        free_strings(features, feature_count);
        return client_fail_oom(client);
    }
    validation->valid = valid;
    validation->code = strdup(code);
    validation->reason = strdup(reason);
    validation->online = online;
    validation->checked_at = now;
    validation->installation_id = strdup(installation);
    if (claims != NULL) {
        validation->license_id = dup_or_null(json_any_str(claims, "license_id"));
        validation->machine_name = dup_or_null(json_any_str(claims, "machine_name"));
        validation->product = dup_or_null(claims_product(claims));
        validation->customer_id = dup_or_null(json_any_str(claims, "customer_id"));
        if (!expiry_known && !claims_time(claims, "exp", &expires_at))
            expires_at = LC_NO_TIME;
    }
    validation->expires_at = expires_at;
    if (valid) {
        validation->features = features;
        validation->feature_count = feature_count;
    } else {
        free_strings(features, feature_count); /* an invalid license unlocks nothing */
    }
    if (validation->code == NULL || validation->reason == NULL ||
        validation->installation_id == NULL) {
        lc_validation_free(validation);
        return client_fail_oom(client);
    }
    *out = validation;
    return LC_OK;
}

/* The verdict, expiring when the certificate does (`expires_at` LC_NO_TIME) or at
 * `expires_at`. */
static lc_status result(lc_client *client, int64_t now, const char *code, const char *reason,
                        const cJSON *claims, bool valid, bool online, int64_t expires_at,
                        char **features, size_t feature_count, lc_validation **out)
{
    return verdict_result(client, now, code, reason, claims, valid, online,
                          expires_at != LC_NO_TIME, expires_at, features, feature_count, out);
}

/* -- words ----------------------------------------------------------------------------- */

/* " until 2027-05-01T12:00:00Z", or " with no end (perpetual)". */
char *until_words(int64_t expires)
{
    if (expires == LC_NO_TIME)
        return strdup(" with no end (perpetual)");
    char *iso = iso_time(expires);
    char *text = iso ? format_text(" until %s", iso) : NULL;
    free(iso);
    return text;
}

/* "3 days", "1 day", "5 hours", "less than an hour". */
static char *duration_words(int64_t seconds)
{
    int64_t days = seconds / 86400, hours = seconds / 3600;
    if (days >= 1)
        return format_text("%lld day%s", (long long)days, days != 1 ? "s" : "");
    if (hours >= 1)
        return format_text("%lld hour%s", (long long)hours, hours != 1 ? "s" : "");
    return strdup("less than an hour");
}

/* The portal's URL for messages: the configured server, else the held activation's, else the
 * one state.json kept; NULL when none is known. */
static char *portal_url(lc_client *client, const char *held_server)
{
    if (client->server || held_server)
        return strdup(client->server ? client->server : held_server);
    return state_server(client);
}

/* " (https://portal…)", or "" when no portal is known. */
static char *portal_at(lc_client *client, const char *held_server)
{
    char *portal = portal_url(client, held_server);
    char *text = portal ? format_text(" (%s)", portal) : strdup("");
    free(portal);
    return text;
}

/* What a signed answer other than VALID means for this machine: what happened, since when,
 * and what to do next (who and when come from the answer when the server says). */
static char *verdict_reason(lc_client *client, const cJSON *answer, const char *held_server)
{
    const char *code = json_any_str(answer, "code");
    const char *license = json_str(answer, "license_id");
    char *portal = portal_url(client, held_server);
    char *at = portal ? format_text(" (%s)", portal) : strdup("");
    char *text = NULL;
    int64_t moment;
    if (at == NULL) {
        free(portal);
        return NULL;
    }
    if (strcmp(code, LC_DEACTIVATED) == 0) {
        static const char *const BY[][2] = {{"portal", "from the portal"},
                                            {"product", "by this program"},
                                            {"staff", "by the vendor's staff"},
                                            {"offline", "with an offline deactivation proof"},
                                            {"system", "by the license server"}};
        const char *who = json_str(answer, "deactivated_by");
        const char *by = NULL;
        for (size_t i = 0; who != NULL && i < sizeof BY / sizeof *BY; i++)
            by = strcmp(who, BY[i][0]) == 0 ? BY[i][1] : by;
        char *when = parse_time(json_any_str(answer, "deactivated_at"), &moment)
                         ? iso_time(moment)
                         : NULL;
        text = format_text("This machine was deactivated on the license server%s%s%s%s%s%s. "
                           "Activate again with `license-client activate`, or ask your "
                           "administrator%s%s for a seat.",
                           by || when ? " (" : "", by ? by : "", by && when ? ", " : "",
                           when ? "at " : "", when ? when : "", by || when ? ")" : "",
                           portal ? " at " : "", portal ? portal : "");
        free(when);
    } else if (strcmp(code, LC_SUSPENDED) == 0) {
        char *since = parse_time(json_any_str(answer, "suspended_at"), &moment)
                          ? iso_time(moment)
                          : NULL;
        const char *why = json_str(answer, "suspension_reason");
        text = format_text("%s%s is suspended%s%s%s%s%s: contact your vendor.",
                           license ? "License " : "The license", license ? license : "",
                           since ? " since " : "", since ? since : "", why ? " (reason: " : "",
                           why ? why : "", why ? ")" : "");
        free(since);
    } else if (strcmp(code, LC_EXPIRED) == 0) {
        char *expired = parse_time(json_any_str(answer, "expires_at"), &moment)
                            ? iso_time(moment)
                            : NULL;
        text = format_text("The license expired%s%s: renew it in the portal%s, then validate "
                           "online again.",
                           expired ? " on " : "", expired ? expired : "", at);
        free(expired);
    } else if (strcmp(code, LC_LEASE_EXPIRED) == 0) {
        text = strdup("The license server ended this lease: check out again.");
    } else if (strcmp(code, LC_BAD_SIGNATURE) == 0) {
        text = strdup("The license server does not recognise this certificate (it was altered, "
                      "or signed with a key the server no longer has): activate again.");
    } else {
        text = format_text("The license server says %s.", code);
    }
    free(portal);
    free(at);
    return text;
}

/* -- what validation reads ------------------------------------------------------------- */

typedef struct held {
    cJSON *activation; /* activation.json, when it holds a certificate */
    cJSON *lease_file; /* else lease.json, when it holds a lease */
    const char *certificate;
    const char *server;
    const cJSON *ended; /* what the server said when it ended the stored lease */
} held;

static void held_clear(held *held)
{
    cJSON_Delete(held->activation);
    cJSON_Delete(held->lease_file);
    memset(held, 0, sizeof *held);
}

/* The stored activation, else a floating license's stored lease; nothing when neither is. */
static lc_status read_held(lc_client *client, held *out)
{
    memset(out, 0, sizeof *out);
    lc_status status = store_read(client, ACTIVATION_FILE, &out->activation);
    if (status != LC_OK)
        return status;
    if (json_any_str(out->activation, "certificate") != NULL) {
        out->certificate = json_any_str(out->activation, "certificate");
        out->server = json_str(out->activation, "server");
        return LC_OK;
    }
    cJSON_Delete(out->activation);
    out->activation = NULL;
    status = store_read(client, LEASE_FILE, &out->lease_file);
    if (status != LC_OK)
        return status;
    cJSON *record = json_obj(out->lease_file, "lease");
    if (json_any_str(record, "certificate") == NULL) {
        held_clear(out);
        return LC_OK;
    }
    out->certificate = json_any_str(record, "certificate");
    out->server = json_str(out->lease_file, "server");
    out->ended = json_obj(record, "ended");
    return LC_OK;
}

bool same_product(const char *a, const char *b)
{
    /* codes are compared as the portal stores them: stripped, in lower case */
    if (a == NULL || b == NULL)
        return false;
    while (isspace((unsigned char)*a))
        a++;
    while (isspace((unsigned char)*b))
        b++;
    size_t la = strlen(a), lb = strlen(b);
    while (la > 0 && isspace((unsigned char)a[la - 1]))
        la--;
    while (lb > 0 && isspace((unsigned char)b[lb - 1]))
        lb--;
    return la == lb && strncasecmp(a, b, la) == 0;
}

lc_status identity_problem(lc_client *client, const cJSON *claims, const char **code,
                           char **reason)
{
    *code = NULL;
    *reason = NULL;
    const char *installation;
    lc_status status = client_installation(client, &installation);
    if (status != LC_OK)
        return status;
    const char *named = json_any_str(claims, "installation_id");
    int64_t expires;
    if (named == NULL || strcmp(named, installation) != 0) {
        *code = LC_WRONG_MACHINE;
        *reason = strdup("The certificate was issued to another installation, not to this "
                         "machine.");
    } else if (client->product != NULL && !same_product(claims_product(claims), client->product)) {
        const char *product = claims_product(claims);
        *code = LC_WRONG_PRODUCT;
        *reason = product ? format_text("The certificate is for product '%s', not '%s'.", product,
                                        client->product)
                          : format_text("The certificate is for product None, not '%s'.",
                                        client->product);
    } else if (cJSON_GetObjectItemCaseSensitive(claims, "exp") != NULL &&
               !claims_time(claims, "exp", &expires)) {
        *code = LC_MALFORMED;
        *reason = strdup("The certificate's expiry is not a date.");
    }
    if (*code != NULL && *reason == NULL)
        return client_fail_oom(client);
    return LC_OK;
}

static char *rollback_problem(lc_client *client, const cJSON *state, const cJSON *claims,
                              int64_t now, bool *oom)
{
    *oom = false;
    char *problem = NULL;
    int64_t seen = last_seen(client, state);
    int64_t issued;
    char *now_text = iso_time(now);
    if (seen != LC_NO_TIME && now < seen - client->clock_tolerance) {
        char *seen_text = iso_time(seen);
        problem = format_text("The system clock (%s) is behind a time this program has already "
                              "seen (%s); correct the clock, or validate online.",
                              now_text ? now_text : "?", seen_text ? seen_text : "?");
        free(seen_text);
        *oom = problem == NULL;
    } else if (claims_time(claims, "iat", &issued) && now < issued - client->clock_tolerance) {
        char *issued_text = iso_time(issued);
        problem = format_text("The system clock (%s) is before the certificate was issued (%s); "
                              "correct the clock.",
                              now_text ? now_text : "?", issued_text ? issued_text : "?");
        free(issued_text);
        *oom = problem == NULL;
    }
    free(now_text);
    return problem;
}

/* The certificate's features, unless the server answered others for the same activation after
 * the certificate was issued. That answer counts only as the signed token the server gave,
 * verified again with the keys this client trusts: a plain list in state.json would be one
 * edit away from unlocking every module. */
static bool current_features(const jws_token *certificate, const cJSON *state,
                             const keyset *keys, char ***features, size_t *count)
{
    const cJSON *claims = certificate->claims;
    const char *token = json_any_str(state, "answer");
    jws_token answer;
    jws_error error;
    if (token == NULL || !jws_verify(keys, token, true, &answer, &error))
        return feature_codes(cJSON_GetObjectItemCaseSensitive(claims, "features"), features,
                             count);
    const cJSON *said = answer.claims;
    const char *code = json_any_str(said, "code");
    const char *license = json_any_str(said, "license_id");
    const char *installation = json_any_str(said, "installation_id");
    const char *cert_license = json_any_str(claims, "license_id");
    const char *cert_installation = json_any_str(claims, "installation_id");
    int64_t at, issued;
    bool usable =
        json_is_true(said, "valid") && code != NULL && strcmp(code, LC_VALID) == 0 &&
        cJSON_GetObjectItemCaseSensitive(said, "features") != NULL &&
        ((license == NULL && cert_license == NULL) ||
         (license && cert_license && strcmp(license, cert_license) == 0)) &&
        ((installation == NULL && cert_installation == NULL) ||
         (installation && cert_installation && strcmp(installation, cert_installation) == 0)) &&
        claims_time(said, "iat", &at) && !(claims_time(claims, "iat", &issued) && at < issued);
    bool ok = feature_codes(cJSON_GetObjectItemCaseSensitive(usable ? said : claims, "features"),
                            features, count);
    jws_token_clear(&answer);
    return ok;
}

static bool is_sticky(const char *code)
{
    for (size_t i = 0; i < sizeof STICKY_VERDICTS / sizeof *STICKY_VERDICTS; i++) {
        if (code != NULL && strcmp(code, STICKY_VERDICTS[i]) == 0)
            return true;
    }
    return false;
}

/* The offline validation; `verified` (may be NULL) gets the certificate when its signature
 * verified, for the online path's fallback. */
static lc_status check_offline(lc_client *client, int64_t now, lc_validation **out,
                               jws_token *verified)
{
    if (verified != NULL)
        memset(verified, 0, sizeof *verified);
    held stored;
    lc_status status = read_held(client, &stored);
    if (status != LC_OK)
        return status;
    if (stored.certificate == NULL) {
        held_clear(&stored);
        return result(client, now, LC_NOT_ACTIVATED, "This installation is not activated.", NULL,
                      false, false, LC_NO_TIME, NULL, 0, out);
    }
    keyset *keys;
    bool owned;
    status = trusted_keys(client, &keys, &owned);
    if (status != LC_OK) {
        held_clear(&stored);
        return status;
    }
    jws_token certificate = {0};
    jws_error error;
    char *reason = NULL;
    const char *code = NULL;
    cJSON *state = NULL;
    char **features = NULL;
    size_t feature_count = 0;
    if (keys->count == 0) {
        status = result(client, now, LC_UNKNOWN_KEY,
                        "No signing keys to verify the certificate with: validate online once, "
                        "or pin the JWKS.",
                        NULL, false, false, LC_NO_TIME, NULL, 0, out);
        goto done;
    }
    if (!jws_verify(keys, stored.certificate, false, &certificate, &error)) {
        if (error.reason == NULL) {
            status = client_fail_oom(client);
            goto done;
        }
        reason = format_text("The certificate is invalid: %s.", error.message);
        status = reason ? result(client, now, error.reason, reason, NULL, false, false,
                                 LC_NO_TIME, NULL, 0, out)
                        : client_fail_oom(client);
        goto done;
    }
    const cJSON *claims = certificate.claims;
    status = identity_problem(client, claims, &code, &reason);
    if (status != LC_OK)
        goto done;
    if (code != NULL) {
        status = result(client, now, code, reason, claims, false, false, LC_NO_TIME, NULL, 0,
                        out);
        goto done;
    }
    status = read_state(client, &state);
    if (status != LC_OK)
        goto done;
    bool oom;
    reason = rollback_problem(client, state, claims, now, &oom);
    if (oom) {
        status = client_fail_oom(client);
        goto done;
    }
    if (reason != NULL) {
        status = result(client, now, LC_CLOCK_ROLLBACK, reason, claims, false, false, LC_NO_TIME,
                        NULL, 0, out);
        goto done;
    }
    int64_t expires = LC_NO_TIME;
    bool has_expiry = claims_time(claims, "exp", &expires);
    bool lease = is_lease_certificate(claims);
    char *expires_text = has_expiry ? iso_time(expires) : NULL;
    if (has_expiry && now >= expires) {
        char *at = lease ? NULL : portal_at(client, stored.server);
        reason = lease ? format_text("The lease ended on %s; check out again.", expires_text)
                 : at  ? format_text("The license expired on %s: renew it in the portal%s, then "
                                     "validate online to fetch the renewed certificate.",
                                     expires_text, at)
                       : NULL;
        free(at);
        free(expires_text);
        status = reason ? result(client, now, lease ? LC_LEASE_EXPIRED : LC_EXPIRED, reason,
                                 claims, false, false, LC_NO_TIME, NULL, 0, out)
                        : client_fail_oom(client);
        goto done;
    }
    const char *ended_code = lease ? json_any_str(stored.ended, "code") : NULL;
    if (ended_code != NULL) {
        const char *said = json_str(stored.ended, "reason");
        free(expires_text);
        status = result(client, now, ended_code,
                        said ? said : "The license server ended the lease.", claims, false,
                        false, LC_NO_TIME, NULL, 0, out);
        goto done;
    }
    const cJSON *verdict = json_obj(state, "verdict");
    const char *verdict_code = json_any_str(verdict, "code");
    const char *verdict_certificate = json_any_str(verdict, "certificate");
    if (is_sticky(verdict_code) && verdict_certificate != NULL &&
        strcmp(verdict_certificate, stored.certificate) == 0) {
        const cJSON *at = cJSON_GetObjectItemCaseSensitive(verdict, "at");
        const char *said = json_str(verdict, "reason");
        char *plain = said ? NULL : format_text("The license server said %s.", verdict_code);
        free(expires_text);
        reason = said || plain ? format_text("%s (Checked online on %s; validate online to "
                                             "update.)",
                                             said ? said : plain,
                                             cJSON_IsString(at) ? at->valuestring : "None")
                               : NULL;
        free(plain);
        status = reason ? result(client, now, verdict_code, reason, claims, false, false,
                                 LC_NO_TIME, NULL, 0, out)
                        : client_fail_oom(client);
        goto done;
    }
    if (!current_features(&certificate, state, keys, &features, &feature_count)) {
        free(expires_text);
        status = client_fail_oom(client);
        goto done;
    }
    set_last_seen(client, state, now, false);
    const char *what = lease ? (json_is_true(claims, "borrowed") ? "borrowed lease" : "lease")
                             : "certificate";
    reason = has_expiry ? format_text("The %s is valid until %s.", what, expires_text)
                        : format_text("The %s is valid (perpetual).", what);
    free(expires_text);
    if (reason == NULL) {
        free_strings(features, feature_count);
        status = client_fail_oom(client);
        goto done;
    }
    status = result(client, now, LC_VALID, reason, claims, true, false, LC_NO_TIME, features,
                    feature_count, out);
done:
    free(reason);
    cJSON_Delete(state);
    if (owned)
        keyset_free(keys);
    held_clear(&stored);
    if (verified != NULL && status == LC_OK && certificate.token != NULL)
        *verified = certificate;
    else
        jws_token_clear(&certificate);
    return status;
}

lc_status validate_offline(lc_client *client, int64_t now, lc_validation **out)
{
    return check_offline(client, now, out, NULL);
}

/* A copy of `validation` with another reason (and validity, code, grace). */
lc_status amend(lc_client *client, lc_validation *validation, const char *code, char *reason,
                bool valid, int64_t grace_until)
{
    if (reason == NULL)
        return client_fail_oom(client);
    free(validation->reason);
    validation->reason = reason;
    if (code != NULL) {
        char *copy = strdup(code);
        if (copy == NULL)
            return client_fail_oom(client);
        free(validation->code);
        validation->code = copy;
    }
    validation->valid = valid;
    validation->grace_until = grace_until;
    if (!valid) {
        free_strings(validation->features, validation->feature_count);
        validation->features = NULL;
        validation->feature_count = 0;
    }
    return LC_OK;
}

/* The server could not answer (`why`): the certificate alone, within the grace period of the
 * last successful online check; a lease until its end; an offline activation without limit. */
static lc_status fallback(lc_client *client, int64_t now, const char *why, lc_validation **out)
{
    char *error = strdup(why);
    if (error == NULL)
        return client_fail_oom(client);
    jws_token certificate;
    lc_validation *local = NULL;
    lc_status status = check_offline(client, now, &local, &certificate);
    if (status != LC_OK || !local->valid) {
        free(error);
        jws_token_clear(&certificate);
        *out = local;
        return status;
    }
    const cJSON *claims = certificate.claims;
    if (is_lease_certificate(claims)) {
        /* a lease has no grace period: its certificate holds until the lease's end */
        char *until = iso_time(local->expires_at);
        status = amend(client, local, NULL,
                       format_text("Checked offline: the license server could not be reached "
                                   "(%s); the lease is valid until it ends, %s.",
                                   error, until ? until : "None"),
                       true, LC_NO_TIME);
        free(until);
    } else if (json_any_str(claims, "source") != NULL &&
               strcmp(json_any_str(claims, "source"), "offline") == 0) {
        /* activated from a response file: air-gapped by design, so no grace period runs out;
         * the signed `source` claim says so, never activation.json (anyone may edit that) */
        char *until = until_words(local->expires_at);
        status = amend(client, local, NULL,
                       until ? format_text("Checked offline: the license server could not be "
                                           "reached (%s); this installation was activated "
                                           "offline and its certificate is valid%s.",
                                           error, until)
                             : NULL,
                       true, LC_NO_TIME);
        free(until);
    } else {
        cJSON *state = NULL;
        status = read_state(client, &state);
        int64_t last_ok = state_time(state, "last_online_ok");
        cJSON_Delete(state);
        if (status == LC_OK && (last_ok == LC_NO_TIME || now > last_ok + client->grace_period)) {
            char *when;
            if (last_ok == LC_NO_TIME) {
                when = strdup("has never been confirmed online");
            } else {
                char *last = iso_time(last_ok);
                char *ended = iso_time(last_ok + client->grace_period);
                char *grace = duration_words(client->grace_period);
                when = last && ended && grace
                           ? format_text("was last confirmed online on %s: its grace period of "
                                         "%s ended on %s",
                                         last, grace, ended)
                           : NULL;
                free(last);
                free(ended);
                free(grace);
            }
            status = amend(client, local, LC_GRACE_EXPIRED,
                           when ? format_text("The license server could not be reached (%s) and "
                                              "the license %s. Connect this machine to the "
                                              "license server and validate again.",
                                              error, when)
                                : NULL,
                           false,
                           last_ok != LC_NO_TIME ? last_ok + client->grace_period : LC_NO_TIME);
            free(when);
        } else if (status == LC_OK) {
            int64_t grace_until = last_ok + client->grace_period;
            char *until = iso_time(grace_until);
            char *left = duration_words(grace_until - now);
            status = amend(client, local, NULL,
                           until && left ? format_text("Checked offline: the license server could "
                                                       "not be reached (%s); valid until %s (%s "
                                                       "of grace left).",
                                                       error, until, left)
                                         : NULL,
                           true, grace_until);
            free(until);
            free(left);
        }
    }
    free(error);
    jws_token_clear(&certificate);
    if (status != LC_OK) {
        lc_validation_free(local);
        return status;
    }
    *out = local;
    return LC_OK;
}

lc_status check_signed_answer(lc_client *client, const api *api, const cJSON *answer,
                              const char *nonce, const cJSON *certificate, int64_t now,
                              jws_token *out)
{
    memset(out, 0, sizeof *out);
    const char *token = json_any_str(answer, "signed_answer");
    if (token == NULL)
        return client_fail(client, LC_ERR_PROTOCOL, "unexpected_response", NULL,
                           "The validation answer is not signed.");
    keyset *keys;
    bool owned;
    lc_status status = trusted_keys(client, &keys, &owned);
    if (status != LC_OK)
        return status;
    jws_error error;
    bool verified = jws_verify(keys, token, true, out, &error);
    if (owned)
        keyset_free(keys);
    if (!verified && error.reason != NULL && strcmp(error.reason, JWS_UNKNOWN_KEY) == 0 &&
        client->pinned == NULL && api != NULL) {
        keyset *fresh; /* a key rotated meanwhile */
        status = fetch_keys(client, api, &fresh);
        if (status != LC_OK)
            return status;
        verified = jws_verify(fresh, token, true, out, &error);
        keyset_free(fresh);
    }
    if (!verified) {
        if (error.reason == NULL)
            return client_fail_oom(client);
        return client_fail(client, LC_ERR_PROTOCOL, "unexpected_response", NULL,
                           "The validation answer does not verify: %s.", error.message);
    }
    const cJSON *claims = out->claims;
    const char *said_nonce = json_any_str(claims, "nonce");
    const char *problem = NULL;
    int64_t issued;
    const char *code = json_any_str(claims, "code");
    const char *license = json_any_str(claims, "license_id");
    const char *installation = json_any_str(claims, "installation_id");
    const char *cert_license = json_any_str(certificate, "license_id");
    const char *cert_installation = json_any_str(certificate, "installation_id");
    if (said_nonce == NULL || strcmp(said_nonce, nonce) != 0)
        problem = "The validation answer is not the answer to this request.";
    else if (!claims_time(claims, "iat", &issued) ||
             (now > issued ? now - issued : issued - now) > client->clock_tolerance)
        problem = "The validation answer is stale (or the clock is off).";
    else if (code == NULL)
        problem = "The validation answer has no code.";
    else if (strcmp(code, LC_BAD_SIGNATURE) != 0 &&
             (license == NULL || cert_license == NULL || strcmp(license, cert_license) != 0 ||
              installation == NULL || cert_installation == NULL ||
              strcmp(installation, cert_installation) != 0))
        problem = "The validation answer is about another certificate.";
    if (problem != NULL) {
        jws_token_clear(out);
        return client_fail(client, LC_ERR_PROTOCOL, "unexpected_response", NULL, "%s", problem);
    }
    return LC_OK;
}

static lc_status validate_online(lc_client *client, lc_validation **out)
{
    int64_t now = client_now(client);
    held stored;
    lc_status status = read_held(client, &stored);
    if (status != LC_OK)
        return status;
    if (stored.certificate == NULL) {
        held_clear(&stored);
        return result(client, now, LC_NOT_ACTIVATED, "This installation is not activated.", NULL,
                      false, false, LC_NO_TIME, NULL, 0, out);
    }
    jws_token claims_only;
    jws_error parse_error;
    if (!jws_parse(stored.certificate, &claims_only, &parse_error)) {
        held_clear(&stored);
        if (parse_error.reason == NULL)
            return client_fail_oom(client);
        return result(client, now, LC_MALFORMED, "The stored certificate is not a JWS.", NULL,
                      false, false, LC_NO_TIME, NULL, 0, out);
    }
    const cJSON *claims = claims_only.claims;
    const char *code;
    char *reason = NULL;
    cJSON *payload = NULL, *answer = NULL, *state = NULL;
    char *nonce = NULL;
    jws_token signed_answer = {0};
    api api = {0};
    char **features = NULL;
    size_t feature_count = 0;
    status = identity_problem(client, claims, &code, &reason);
    if (status != LC_OK)
        goto done;
    if (code != NULL) {
        status = result(client, now, code, reason, claims, false, false, LC_NO_TIME, NULL, 0,
                        out);
        goto done;
    }
    status = api_open(client, stored.server, &api);
    if (status == LC_ERR_NO_MEMORY)
        goto done;
    if (status != LC_OK) { /* no server known: as good as unreachable */
        status = fallback(client, now, lc_client_error_message(client), out);
        goto done;
    }
    nonce = client->fixed_nonce ? strdup(client->fixed_nonce) : random_urlsafe(24);
    payload = cJSON_CreateObject();
    if (nonce == NULL || payload == NULL ||
        !json_set_str(payload, "certificate", stored.certificate) ||
        !json_set_str(payload, "nonce", nonce)) {
        status = client_fail_oom(client);
        goto done;
    }
    status = api_call(client, &api, "POST", "/api/v1/validations", payload, NULL, &answer);
    if (is_fallback_error(status)) {
        status = fallback(client, now, lc_client_error_message(client), out);
        goto done;
    }
    if (status == LC_ERR_NO_MEMORY)
        goto done;
    if (status != LC_OK) {
        reason = format_text("The server refused the certificate: %s",
                             lc_client_error_message(client));
        status = reason ? result(client, now, LC_MALFORMED, reason, claims, false, true,
                                 LC_NO_TIME, NULL, 0, out)
                        : client_fail_oom(client);
        goto done;
    }
    /* only the signed answer counts: the plain fields beside it prove nothing */
    status = check_signed_answer(client, &api, answer, nonce, claims, now, &signed_answer);
    if (status == LC_ERR_NO_MEMORY)
        goto done;
    if (status != LC_OK) {
        status = fallback(client, now, lc_client_error_message(client), out);
        goto done;
    }
    const cJSON *said = signed_answer.claims;
    const char *said_code = json_any_str(said, "code");
    bool valid = json_is_true(said, "valid") && strcmp(said_code, LC_VALID) == 0;
    bool lease = is_lease_certificate(claims);
    status = read_state(client, &state);
    if (status != LC_OK)
        goto done;
    const cJSON *said_expiry = cJSON_GetObjectItemCaseSensitive(said, "expires_at");
    int64_t expires = LC_NO_TIME;
    bool has_expiry = cJSON_IsString(said_expiry) && said_expiry->valuestring[0] != '\0' &&
                      parse_time(said_expiry->valuestring, &expires);
    if (valid) {
        /* the server vouches for the time too: forget a clock that once ran ahead */
        set_time(state, "last_online_ok", now);
        json_set(state, "verdict", NULL);
        set_last_seen(client, state, now, true);
        state_forget_answer(state);
        if (cJSON_GetObjectItemCaseSensitive(said, "features") != NULL) {
            /* as of now, newer than the certificate's; the signed token is what is kept */
            if (!feature_codes(cJSON_GetObjectItemCaseSensitive(said, "features"), &features,
                               &feature_count) ||
                !json_set_str(state, "answer", signed_answer.token)) {
                status = client_fail_oom(client);
                goto done;
            }
        } else if (!feature_codes(cJSON_GetObjectItemCaseSensitive(claims, "features"),
                                  &features, &feature_count)) { /* a server from before features */
            status = client_fail_oom(client);
            goto done;
        }
    } else {
        cJSON *verdict = cJSON_CreateObject();
        reason = verdict_reason(client, said, stored.server);
        if (verdict == NULL || reason == NULL || !json_set_str(verdict, "code", said_code) ||
            !set_time(verdict, "at", now) ||
            !json_set_str(verdict, "certificate", stored.certificate) ||
            !json_set_str(verdict, "reason", reason)) {
            cJSON_Delete(verdict);
            status = client_fail_oom(client);
            goto done;
        }
        json_set(state, "verdict", verdict);
        state_forget_answer(state);
    }
    status = store_write(client, STATE_FILE, state);
    if (status != LC_OK)
        goto done;
    if (valid && !lease && stored.activation != NULL) /* a lease is renewed by its heartbeat */
        refresh(client, &api, stored.activation, claims, has_expiry, expires);
    if (valid)
        reason = strdup("The license server confirmed the license.");
    if (reason == NULL) {
        status = client_fail_oom(client);
        goto done;
    }
    /* the server's expiry, null when the license became perpetual; a lease ends before the
     * license does: its certificate's exp */
    bool said_when = said_expiry != NULL && !lease;
    status = verdict_result(client, now, said_code, reason, claims, valid, true, said_when,
                            said_when && has_expiry ? expires : LC_NO_TIME, features,
                            feature_count, out);
    features = NULL; /* the result's now */
    feature_count = 0;
done:
    free_strings(features, feature_count);
    free(reason);
    free(nonce);
    cJSON_Delete(payload);
    cJSON_Delete(answer);
    cJSON_Delete(state);
    jws_token_clear(&signed_answer);
    jws_token_clear(&claims_only);
    api_close(&api);
    held_clear(&stored);
    return status;
}

lc_status lc_validate(lc_client *client, lc_mode mode, lc_validation **out)
{
    if (client == NULL)
        return LC_ERR_USAGE;
    client_clear_error(client);
    if (out == NULL)
        return client_fail(client, LC_ERR_USAGE, "usage_error", NULL,
                           "lc_validate needs somewhere to put the verdict.");
    *out = NULL;
    lc_status status = mode == LC_OFFLINE ? validate_offline(client, client_now(client), out)
                                          : validate_online(client, out);
    /* a verdict is no failure: the last error is what the verdict says in its reason */
    if (status == LC_OK)
        client_clear_error(client);
    return status;
}

lc_status lc_has_feature(lc_client *client, const char *code, bool *out)
{
    if (client == NULL || out == NULL)
        return LC_ERR_USAGE;
    *out = false;
    lc_validation *validation;
    lc_status status = lc_validate(client, LC_OFFLINE, &validation);
    if (status != LC_OK)
        return status;
    for (size_t i = 0; code != NULL && i < validation->feature_count; i++)
        *out = *out || strcmp(validation->features[i], code) == 0;
    lc_validation_free(validation);
    return LC_OK;
}
