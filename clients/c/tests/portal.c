#include "portal.h"

#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *body_text(const request *incoming, const char *name)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(incoming->body, name);
    return cJSON_IsString(item) ? item->valuestring : NULL;
}

static char *certificate(portal *portal, const char *machine, const char *lease_id,
                         int64_t expires, bool borrowed)
{
    cJSON *claims = cJSON_CreateObject();
    cJSON_AddStringToObject(claims, "license_id", "L-TEST-0001");
    cJSON_AddStringToObject(claims, "installation_id", portal->installation);
    cJSON_AddStringToObject(claims, "machine_name", machine);
    cJSON_AddStringToObject(claims, "product", portal->product);
    cJSON_AddStringToObject(claims, "customer_id", "C-1");
    cJSON_AddNumberToObject(claims, "iat", (double)portal->now);
    cJSON_AddNumberToObject(claims, "exp", (double)expires);
    cJSON *features = cJSON_AddArrayToObject(claims, "features");
    cJSON_AddItemToArray(features, cJSON_CreateString("steel"));
    if (lease_id != NULL) {
        cJSON_AddStringToObject(claims, "lease_id", lease_id);
        cJSON_AddBoolToObject(claims, "borrowed", borrowed);
    }
    char *token = signer_sign(portal->signer, claims, NULL);
    cJSON_Delete(claims);
    return token;
}

static response with_certificate(int status, char *token, const char *lease_token)
{
    cJSON *body = cJSON_CreateObject();
    cJSON_AddStringToObject(body, "certificate", token);
    if (lease_token != NULL)
        cJSON_AddStringToObject(body, "lease_token", lease_token);
    free(token);
    return json_response(status, body);
}

static response refuse_other_product(portal *portal, const request *incoming)
{
    const char *requested = body_text(incoming, "product");
    snprintf(portal->sent_product, sizeof portal->sent_product, "%s", requested ? requested : "");
    if (requested == NULL || strcasecmp(requested, portal->product) == 0)
        return (response){0, NULL, NULL};
    cJSON *details = cJSON_CreateObject();
    cJSON_AddStringToObject(details, "license_id", "L-TEST-0001");
    cJSON_AddStringToObject(details, "product", portal->product);
    cJSON_AddStringToObject(details, "requested", requested);
    return error_response(409, "wrong_product",
                          "License L-TEST-0001 is for CAD Pro (cadpro), not femsolver.", details);
}

response portal_handle(const request *incoming, void *user)
{
    portal *portal = user;
    const char *path = incoming->path;
    bool post = strcmp(incoming->method, "POST") == 0;
    if (strcmp(path, "/api/v1/signing-keys") == 0)
        return (response){200, signer_jwks(portal->signer), NULL};
    if (post && (strcmp(path, "/api/v1/activations") == 0 || strcmp(path, "/api/v1/leases") == 0)) {
        const char *password = body_text(incoming, "password");
        if (password == NULL || strcmp(password, "secret") != 0)
            return error_response(401, "invalid_credentials",
                                  "The license ID or the password is wrong.", NULL);
        response refused = refuse_other_product(portal, incoming);
        if (refused.status != 0)
            return refused;
        const char *machine = body_text(incoming, "machine_name");
        snprintf(portal->sent_machine, sizeof portal->sent_machine, "%s", machine);
        snprintf(portal->installation, sizeof portal->installation, "%s",
                 body_text(incoming, "installation_id"));
        if (strcmp(path, "/api/v1/activations") == 0) {
            portal->activations++;
            portal->expires = portal->now + 365 * 86400;
            return with_certificate(201, certificate(portal, machine, NULL, portal->expires,
                                                     false),
                                    NULL);
        }
        portal->checkouts++;
        snprintf(portal->lease_token, sizeof portal->lease_token, "token-%d", portal->checkouts);
        int64_t until;
        const char *borrow = body_text(incoming, "borrow_until");
        bool borrowed = borrow != NULL;
        until = portal->now + 600;
        if (borrowed)
            parse_time(borrow, &until);
        return with_certificate(201, certificate(portal, machine, "LS-1", until, borrowed),
                                portal->lease_token);
    }
    if (post && strcmp(path, "/api/v1/leases/LS-1/heartbeat") == 0) {
        portal->heartbeats++;
        char expected[128];
        snprintf(expected, sizeof expected, "Bearer %s", portal->lease_token);
        if (strcmp(incoming->authorization, expected) != 0)
            return error_response(401, "invalid_lease_token", "Unknown lease token.", NULL);
        if (portal->lease_ending != NULL) {
            cJSON *details = cJSON_CreateObject();
            cJSON_AddStringToObject(details, "lease_id", "LS-1");
            cJSON_AddStringToObject(details, "reason", portal->lease_ending);
            return error_response(410, "lease_expired", "The lease has ended.", details);
        }
        return with_certificate(200, certificate(portal, "CAD-WS-07", "LS-1", portal->now + 600,
                                                 false),
                                NULL);
    }
    if (strcmp(incoming->method, "DELETE") == 0 && strcmp(path, "/api/v1/leases/LS-1") == 0) {
        portal->checkins++;
        return (response){204, NULL, NULL};
    }
    if (post && strcmp(path, "/api/v1/deactivations") == 0) {
        portal->deactivations++;
        return json_response(200, cJSON_CreateObject());
    }
    if (post && strcmp(path, "/api/v1/validations") == 0) {
        portal->validations++;
        if (portal->verdict == NULL)
            return error_response(503, "service_unavailable", "Licensing is down.", NULL);
        cJSON *claims = cJSON_CreateObject();
        bool valid = strcmp(portal->verdict, "VALID") == 0;
        cJSON_AddStringToObject(claims, "code", portal->verdict);
        cJSON_AddBoolToObject(claims, "valid", valid);
        cJSON_AddStringToObject(claims, "license_id", "L-TEST-0001");
        cJSON_AddStringToObject(claims, "installation_id", portal->installation);
        cJSON_AddStringToObject(claims, "nonce", body_text(incoming, "nonce"));
        cJSON_AddNumberToObject(claims, "iat", (double)portal->now);
        if (portal->perpetual) {
            cJSON_AddNullToObject(claims, "expires_at");
        } else {
            char *expires = iso_time(portal->expires);
            cJSON_AddStringToObject(claims, "expires_at", expires);
            free(expires);
        }
        cJSON *features = cJSON_AddArrayToObject(claims, "features");
        cJSON_AddItemToArray(features, cJSON_CreateString("steel"));
        cJSON_AddItemToArray(features, cJSON_CreateString("fem"));
        char *answer = signer_sign(portal->signer, claims, "license-validation+jwt");
        cJSON_Delete(claims);
        cJSON *body = cJSON_CreateObject();
        cJSON_AddStringToObject(body, "signed_answer", answer);
        /* the plain fields beside it prove nothing: a forged VALID must change nothing */
        cJSON_AddBoolToObject(body, "valid", true);
        free(answer);
        return json_response(200, body);
    }
    return error_response(404, "not_found", "No such route.", NULL);
}

lc_client *portal_client(portal *portal, const char *url, const char *folder)
{
    lc_client *client;
    lc_client_new(&client);
    lc_client_set_server(client, url);
    lc_client_set_product(client, "cadpro");
    lc_client_set_data_dir(client, folder);
    lc_client_set_installation_id(client, "inst-test-1");
    lc_client_set_clock(client, fixed_clock, &portal->now);
    lc_client_set_retries(client, 0);
    lc_client_set_timeout_ms(client, 5000);
    return client;
}
