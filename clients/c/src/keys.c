/* The signing keys: the pinned JWKS, else keys.json (the server's, as last fetched), and the
 * check of a certificate the server just sent. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* -- keys and certificates ------------------------------------------------------------- */

lc_status trusted_keys(lc_client *client, keyset **out, bool *owned)
{
    *out = NULL;
    *owned = false;
    if (client->pinned != NULL) {
        *out = client->pinned;
        return LC_OK;
    }
    cJSON *document;
    lc_status status = store_read(client, KEYS_FILE, &document);
    if (status != LC_OK)
        return status;
    cJSON *jwks = json_obj(document, "jwks");
    jws_error error;
    keyset *keys = NULL;
    if (jwks == NULL || !keyset_from_json(jwks, &keys, &error)) {
        cJSON *empty = cJSON_Parse("{\"keys\": []}");
        if (empty == NULL || !keyset_from_json(empty, &keys, &error)) {
            cJSON_Delete(empty);
            cJSON_Delete(document);
            return client_fail_oom(client);
        }
        cJSON_Delete(empty);
    }
    cJSON_Delete(document);
    *out = keys;
    *owned = true;
    return LC_OK;
}

lc_status fetch_keys(lc_client *client, const api *api, keyset **out)
{
    *out = NULL;
    cJSON *document;
    lc_status status = api_call(client, api, "GET", "/api/v1/signing-keys", NULL, NULL,
                                &document);
    if (status != LC_OK)
        return status;
    jws_error error;
    keyset *keys;
    if (!keyset_from_json(document, &keys, &error)) {
        cJSON_Delete(document);
        if (error.reason == NULL)
            return client_fail_oom(client);
        return client_fail(client, LC_ERR_PROTOCOL, "unexpected_response", NULL,
                           "The server's signing keys are not a JWKS: %s", error.message);
    }
    cJSON_Delete(document);
    if (keys->count == 0) {
        keyset_free(keys);
        return client_fail(client, LC_ERR_PROTOCOL, "unexpected_response", NULL,
                           "The server published no Ed25519 signing key.");
    }
    cJSON *record = cJSON_CreateObject();
    char *fetched = iso_time(client_now(client));
    if (record == NULL || fetched == NULL ||
        !json_set(record, "jwks", cJSON_Duplicate(keys->document, true)) ||
        !json_set_str(record, "fetched_at", fetched)) {
        cJSON_Delete(record);
        free(fetched);
        keyset_free(keys);
        return client_fail_oom(client);
    }
    free(fetched);
    status = store_write(client, KEYS_FILE, record);
    cJSON_Delete(record);
    if (status != LC_OK) {
        keyset_free(keys);
        return status;
    }
    *out = keys;
    return LC_OK;
}

lc_status verify_new_certificate(lc_client *client, const api *api, const keyset *keys,
                                 const char *token, jws_token *out)
{
    jws_error error;
    bool verified = token != NULL && jws_verify(keys, token, false, out, &error);
    if (token == NULL) {
        error.reason = JWS_MALFORMED;
        snprintf(error.message, sizeof error.message, "the certificate is not a string");
    }
    if (!verified && error.reason != NULL && strcmp(error.reason, JWS_UNKNOWN_KEY) == 0 &&
        client->pinned == NULL) {
        keyset *fresh; /* a key rotated meanwhile */
        lc_status status = fetch_keys(client, api, &fresh);
        if (status != LC_OK)
            return status;
        verified = jws_verify(fresh, token, false, out, &error);
        keyset_free(fresh);
    }
    if (!verified) {
        if (error.reason == NULL)
            return client_fail_oom(client);
        cJSON *details = cJSON_CreateObject();
        cJSON_AddStringToObject(details, "reason", error.reason);
        return client_fail(client, LC_ERR_INVALID_CERTIFICATE, "invalid_certificate", details,
                           "The server's certificate does not verify: %s.", error.message);
    }
    const char *installation;
    lc_status status = client_installation(client, &installation);
    if (status != LC_OK) {
        jws_token_clear(out);
        return status;
    }
    const char *named = json_any_str(out->claims, "installation_id");
    if (named == NULL || strcmp(named, installation) != 0) {
        jws_token_clear(out);
        return client_fail(client, LC_ERR_INVALID_CERTIFICATE, "invalid_certificate", NULL,
                           "The server's certificate names another installation.");
    }
    return LC_OK;
}

