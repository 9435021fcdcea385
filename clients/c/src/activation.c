/* Activation and deactivation online, and the status of what this installation holds. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

#define KEYS_MAX_AGE 86400

/* -- activation ------------------------------------------------------------------------ */

/* What the previous activation used: the stored activation's, else what state.json kept through
 * a deactivation; so activating again needs neither the server nor the machine name, and an
 * administrator's name for the machine is not replaced by the host name. */
static char *remembered(lc_client *client, const char *name)
{
    static const char *const FILES[] = {ACTIVATION_FILE, STATE_FILE};
    for (size_t i = 0; i < sizeof FILES / sizeof *FILES; i++) {
        cJSON *document = NULL;
        if (store_read(client, FILES[i], &document) != LC_OK) {
            client_clear_error(client);
            continue;
        }
        char *value = dup_or_null(json_str(document, name));
        cJSON_Delete(document);
        if (value != NULL)
            return value;
    }
    return NULL;
}

char *host_name(void)
{
    char name[256];
    if (gethostname(name, sizeof name) != 0 || name[0] == '\0')
        return strdup("unknown");
    name[sizeof name - 1] = '\0';
    return strdup(name);
}

lc_status lc_activate(lc_client *client, const char *license_id, const char *password,
                      const char *machine_name, lc_validation **out)
{
    if (client == NULL)
        return LC_ERR_USAGE;
    client_clear_error(client);
    if (out != NULL)
        *out = NULL;
    if (license_id == NULL || license_id[0] == '\0' || password == NULL || password[0] == '\0')
        return client_fail(client, LC_ERR_USAGE, "usage_error", NULL,
                           "Activating needs the license ID and its password.");
    const char *installation;
    lc_status status = client_installation(client, &installation);
    if (status != LC_OK)
        return status;
    /* only a first activation is named after the host: an admin's name for it stays */
    char *name = machine_name && machine_name[0] ? strdup(machine_name)
                                                 : remembered(client, "machine_name");
    if (name == NULL)
        name = host_name();
    char *server = remembered(client, "server");
    api api = {0};
    keyset *fetched = NULL;
    cJSON *payload = NULL, *answer = NULL, *activation = NULL, *state = NULL;
    jws_token certificate = {0};
    char *now_text = NULL;
    if (name == NULL) {
        status = client_fail_oom(client);
        goto done;
    }
    status = api_open(client, server, &api);
    if (status != LC_OK)
        goto done;
    const keyset *keys = client->pinned;
    if (keys == NULL) {
        status = fetch_keys(client, &api, &fetched);
        if (status != LC_OK)
            goto done;
        keys = fetched;
    }
    payload = cJSON_CreateObject();
    if (payload == NULL || !json_set_str(payload, "license_id", license_id) ||
        !json_set_str(payload, "password", password) ||
        !json_set_str(payload, "installation_id", installation) ||
        !json_set_str(payload, "machine_name", name) ||
        (client->product != NULL && !json_set_str(payload, "product", client->product))) {
        status = client_fail_oom(client);
        goto done;
    }
    status = api_call(client, &api, "POST", "/api/v1/activations", payload, NULL, &answer);
    if (status != LC_OK)
        goto done;
    status = verify_new_certificate(client, &api, keys, json_any_str(answer, "certificate"),
                                    &certificate);
    if (status != LC_OK)
        goto done;
    int64_t now = client_now(client);
    now_text = iso_time(now);
    const char *cert_license = json_str(certificate.claims, "license_id");
    const char *cert_machine = json_str(certificate.claims, "machine_name");
    activation = cJSON_CreateObject();
    if (activation == NULL || now_text == NULL ||
        !json_set(activation, "version", cJSON_CreateNumber(1)) ||
        !json_set_str(activation, "server", api.base_url) ||
        !json_set_str(activation, "license_id", cert_license ? cert_license : license_id) ||
        !json_set_str(activation, "installation_id", installation) ||
        !json_set_str(activation, "machine_name", cert_machine ? cert_machine : name) ||
        !json_set_str(activation, "certificate", certificate.token) ||
        !json_set_str(activation, "activated_at", now_text) ||
        !json_set_str(activation, "source", "online") ||
        (json_obj(answer, "activation") != NULL &&
         !json_set(activation, "activation", cJSON_Duplicate(json_obj(answer, "activation"), true))) ||
        (client->remember_password && !json_set_str(activation, "password", password))) {
        status = client_fail_oom(client);
        goto done;
    }
    status = store_write(client, ACTIVATION_FILE, activation);
    if (status != LC_OK)
        goto done;
    /* a proof of an earlier offline activation cannot free this one's seat */
    status = store_remove(client, PROOF_FILE);
    if (status != LC_OK)
        goto done;
    status = read_state(client, &state);
    if (status != LC_OK)
        goto done;
    /* the server and the machine name are kept beyond a deactivation: activating again
     * needs neither */
    if (!set_time(state, "last_online_ok", now) || !json_set(state, "verdict", NULL) ||
        !json_set_str(state, "server", api.base_url) ||
        !json_set_str(state, "machine_name", json_str(activation, "machine_name"))) {
        status = client_fail_oom(client);
        goto done;
    }
    state_forget_answer(state);
    set_last_seen(client, state, now, true);
    status = store_write(client, STATE_FILE, state);
    if (status != LC_OK || out == NULL)
        goto done;
    status = lc_validate(client, LC_OFFLINE, out);
    if (status == LC_OK && (*out)->valid) {
        /* the server just issued the certificate: an online verdict, and it says so */
        char *until = until_words((*out)->expires_at);
        (*out)->online = true;
        status = amend(client, *out, NULL,
                       until ? format_text("Activated online: the license server at %s issued "
                                           "this certificate just now; it is valid%s.",
                                           api.base_url, until)
                             : NULL,
                       true, LC_NO_TIME);
        free(until);
        if (status != LC_OK) {
            lc_validation_free(*out);
            *out = NULL;
        }
    }
done:
    free(name);
    free(server);
    free(now_text);
    api_close(&api);
    keyset_free(fetched);
    cJSON_Delete(payload);
    cJSON_Delete(answer);
    cJSON_Delete(activation);
    cJSON_Delete(state);
    jws_token_clear(&certificate);
    return status;
}

/* After a VALID online check: fresh keys when stale, a fresh certificate when the license's
 * expiry changed (extended or renewed). Best effort: errors are ignored. */
void refresh(lc_client *client, const api *api, const cJSON *activation, const cJSON *claims,
             bool server_has_expiry, int64_t server_expiry)
{
    if (client->pinned == NULL) {
        cJSON *document = NULL;
        store_read(client, KEYS_FILE, &document);
        int64_t fetched = state_time(document, "fetched_at");
        cJSON_Delete(document);
        keyset *keys;
        bool owned;
        if (trusted_keys(client, &keys, &owned) == LC_OK) {
            const cJSON *kid = NULL;
            jws_token token;
            jws_error error;
            bool known = true;
            if (jws_parse(json_any_str(activation, "certificate"), &token, &error)) {
                kid = cJSON_GetObjectItemCaseSensitive(token.header, "kid");
                known = keyset_has(keys, cJSON_IsString(kid) ? kid->valuestring : NULL);
                jws_token_clear(&token);
            }
            if (owned)
                keyset_free(keys);
            if (fetched == LC_NO_TIME || client_now(client) - fetched > KEYS_MAX_AGE || !known) {
                keyset *fresh = NULL;
                fetch_keys(client, api, &fresh);
                keyset_free(fresh);
            }
        }
    }
    int64_t expires;
    bool has_expiry = claims_time(claims, "exp", &expires);
    const char *password = json_str(activation, "password");
    bool changed = server_has_expiry != has_expiry ||
                   (has_expiry && (server_expiry - expires > 1 || expires - server_expiry > 1));
    if (password != NULL && changed) {
        char *license = dup_or_null(json_str(activation, "license_id"));
        char *secret = strdup(password);
        char *machine = dup_or_null(json_str(activation, "machine_name"));
        if (license != NULL && secret != NULL)
            lc_activate(client, license, secret, machine, NULL);
        free(license);
        free(secret);
        free(machine);
    }
    client_clear_error(client);
}

/* Drop the stored activation; the server and machine name it used stay in state.json for the
 * next activation. */
static lc_status forget(lc_client *client)
{
    lc_status status = store_remove(client, ACTIVATION_FILE);
    return status == LC_OK ? state_reset(client) : status;
}

lc_status lc_forget(lc_client *client)
{
    if (client == NULL)
        return LC_ERR_USAGE;
    client_clear_error(client);
    return forget(client);
}

static bool ends_with(const char *text, const char *tail)
{
    size_t length = strlen(text), size = strlen(tail);
    return length >= size && strcmp(text + length - size, tail) == 0;
}

lc_status lc_deactivate(lc_client *client, const char *password)
{
    if (client == NULL)
        return LC_ERR_USAGE;
    client_clear_error(client);
    cJSON *activation;
    lc_status status = store_read(client, ACTIVATION_FILE, &activation);
    if (status != LC_OK)
        return status;
    if (activation == NULL)
        return client_fail(client, LC_ERR_NOT_ACTIVATED, "not_activated", NULL,
                           "This installation is not activated.");
    const char *secret = password && password[0] ? password : json_str(activation, "password");
    if (secret == NULL) {
        cJSON_Delete(activation);
        return client_fail(client, LC_ERR_USAGE, "password_required", NULL,
                           "No password is stored for this activation; give the password to "
                           "deactivate.");
    }
    const char *installation = json_str(activation, "installation_id");
    if (installation == NULL) {
        status = client_installation(client, &installation);
        if (status != LC_OK) {
            cJSON_Delete(activation);
            return status;
        }
    }
    api api;
    cJSON *payload = cJSON_CreateObject();
    cJSON *answer = NULL;
    status = api_open(client, json_str(activation, "server"), &api);
    if (status == LC_OK) {
        const cJSON *license = cJSON_GetObjectItemCaseSensitive(activation, "license_id");
        if (payload == NULL ||
            !json_set(payload, "license_id", license ? cJSON_Duplicate(license, true) : NULL) ||
            !json_set_str(payload, "password", secret) ||
            !json_set_str(payload, "installation_id", installation))
            status = client_fail_oom(client);
        else
            status = api_call(client, &api, "POST", "/api/v1/deactivations", payload, NULL,
                              &answer);
        /* already gone on the server (deactivated in the portal): just forget it here */
        if (status != LC_OK && client->error_code != NULL &&
            (ends_with(client->error_code, "not_found") ||
             strcmp(client->error_code, "not_activated") == 0))
            status = LC_OK;
        api_close(&api);
    }
    cJSON_Delete(payload);
    cJSON_Delete(answer);
    cJSON_Delete(activation);
    if (status != LC_OK)
        return status;
    client_clear_error(client);
    return forget(client);
}

/* -- status ---------------------------------------------------------------------------- */

lc_status lc_status_get(lc_client *client, lc_mode mode, lc_status_report **out)
{
    if (client == NULL || out == NULL)
        return LC_ERR_USAGE;
    *out = NULL;
    lc_validation *validation;
    lc_status status = lc_validate(client, mode, &validation);
    if (status != LC_OK)
        return status;
    lc_status_report *report = calloc(1, sizeof *report);
    cJSON *activation = NULL, *lease_file = NULL, *state = NULL;
    lc_lease *lease = NULL;
    jws_token claims = {0};
    const char *installation, *folder;
    if (report == NULL) {
        lc_validation_free(validation);
        return client_fail_oom(client);
    }
    report->validation = validation;
    status = store_read(client, ACTIVATION_FILE, &activation);
    if (status == LC_OK && activation == NULL)
        status = store_read(client, LEASE_FILE, &lease_file);
    if (status == LC_OK)
        status = read_state(client, &state);
    if (status == LC_OK)
        status = client_installation(client, &installation);
    if (status == LC_OK)
        status = client_folder(client, &folder);
    if (status != LC_OK)
        goto done;
    if (lease_file != NULL) {
        char *token = NULL;
        lease = held_lease(lease_file, &token);
        free(token);
    }
    const char *certificate = activation ? json_any_str(activation, "certificate")
                              : lease    ? lease->certificate
                                         : NULL;
    jws_error error;
    bool parsed = certificate != NULL && jws_parse(certificate, &claims, &error);
    const cJSON *said = parsed ? claims.claims : NULL;
    int64_t last_ok = activation ? state_time(state, "last_online_ok") : LC_NO_TIME;
    const char *server = client->server ? client->server
                         : activation   ? json_str(activation, "server")
                         : lease        ? lease->server
                                        : NULL;
    const char *license = activation ? json_str(activation, "license_id") : NULL;
    const char *machine = activation ? json_str(activation, "machine_name") : NULL;
    report->activated = activation != NULL && activation->child != NULL;
    report->installation_id = strdup(installation);
    report->data_dir = strdup(folder);
    report->server = dup_or_null(server);
    report->license_id = dup_or_null(license ? license : json_any_str(said, "license_id"));
    report->machine_name = dup_or_null(machine ? machine : json_any_str(said, "machine_name"));
    report->product = dup_or_null(claims_product(said));
    report->customer_id = dup_or_null(json_any_str(said, "customer_id"));
    report->activated_at = state_time(activation, "activated_at");
    if (said != NULL)
        claims_time(said, "exp", &report->expires_at);
    report->last_online_check = last_ok;
    report->grace_until = last_ok != LC_NO_TIME ? last_ok + client->grace_period : LC_NO_TIME;
    if (validation->feature_count > 0) {
        report->features = calloc(validation->feature_count, sizeof *report->features);
        for (size_t i = 0; report->features && i < validation->feature_count; i++) {
            report->features[i] = strdup(validation->features[i]);
            report->feature_count += report->features[i] != NULL;
        }
    }
    if (activation != NULL) {
        /* the certificate's claim, as the grace period reads it (not activation.json's) */
        const char *source = json_any_str(said, "source");
        report->source = strdup(source && strcmp(source, "offline") == 0 ? "offline" : "online");
    }
    report->lease = lease;
    lease = NULL;
    if (report->installation_id == NULL || report->data_dir == NULL ||
        report->feature_count != validation->feature_count ||
        (activation != NULL && report->source == NULL))
        status = client_fail_oom(client);
done:
    cJSON_Delete(activation);
    cJSON_Delete(lease_file);
    cJSON_Delete(state);
    lc_lease_free(lease);
    jws_token_clear(&claims);
    if (status != LC_OK) {
        lc_status_report_free(report);
        return status;
    }
    *out = report;
    return LC_OK;
}
