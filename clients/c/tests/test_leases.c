/* Floating licenses against the fake portal: check-out, heartbeats (renewed, adopted token,
 * revoked, lapsed), borrowing, check-in. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "internal.h"
#include "portal.h"
#include "tests.h"

static cJSON *lease_file(const char *folder)
{
    char *path = path_join(folder, LEASE_FILE);
    char *text = read_file_text(path);
    free(path);
    cJSON *document = text ? cJSON_Parse(text) : NULL;
    free(text);
    return document;
}

static void set_stored_token(const char *folder, const char *token)
{
    cJSON *document = lease_file(folder);
    cJSON_ReplaceItemInObject(json_obj(document, "lease"), "lease_token",
                              cJSON_CreateString(token));
    char *path = path_join(folder, LEASE_FILE);
    char *text = cJSON_Print(document);
    write_file_text(path, text);
    free(text);
    free(path);
    cJSON_Delete(document);
}

static const char *state_after_heartbeat(lc_client *client, lc_lease_status **status)
{
    lc_lease_status_free(*status);
    *status = NULL;
    CHECK_STATUS(lc_heartbeat(client, status), LC_OK, client);
    return *status ? (*status)->state : NULL;
}

static void checkout_and_heartbeats(void)
{
    portal portal = {
        .signer = signer_new("k1"), .now = 1780315200, .product = "cadpro", .verdict = "VALID"};
    fake_server *server = fake_server_start(portal_handle, &portal);
    char *folder = make_temp_folder();
    lc_client *client = portal_client(&portal, fake_server_url(server), folder);

    CHECK_STATUS(lc_checkin(client, NULL), LC_ERR_NOT_CHECKED_OUT, client);
    lc_lease *lease = NULL;
    CHECK_STATUS(lc_checkout(client, "L-TEST-0001", NULL, "CAD-WS-07", &lease), LC_ERR_USAGE,
                 client);
    CHECK_STR(lc_client_error_code(client), "password_required");
    CHECK_STATUS(lc_checkout(client, "L-TEST-0001", "secret", "CAD-WS-07", &lease), LC_OK,
                 client);
    CHECK(portal.checkouts == 1);
    CHECK_STR(portal.sent_product, "cadpro");
    CHECK(lease != NULL && !lease->borrowed && lease->heartbeat_interval == 200);
    CHECK_STR(lease ? lease->lease_id : NULL, "LS-1");
    lc_lease_free(lease);
    cJSON *document = lease_file(folder);
    CHECK_STR(json_str(json_obj(document, "lease"), "lease_token"), "token-1");
    CHECK_STR(json_str(document, "password"), "secret");
    cJSON_Delete(document);

    /* idempotent: the lease held comes back, no second seat */
    CHECK_STATUS(lc_checkout(client, NULL, NULL, NULL, &lease), LC_OK, client);
    CHECK(portal.checkouts == 1);
    lc_lease_free(lease);

    lc_validation *result = NULL;
    CHECK_STATUS(lc_validate(client, LC_OFFLINE, &result), LC_OK, client);
    CHECK(result != NULL && result->valid);
    lc_validation_free(result);

    lc_lease_status *status = NULL;
    CHECK_STR(state_after_heartbeat(client, &status), "live");
    CHECK(portal.heartbeats == 1 && status != NULL && status->held);
    CHECK(status != NULL && strstr(status->reason, "Renewed until") != NULL);

    /* another process checked out since: its token is adopted */
    snprintf(portal.lease_token, sizeof portal.lease_token, "token-other");
    set_stored_token(folder, "token-other");
    CHECK_STR(state_after_heartbeat(client, &status), "live");
    CHECK(portal.heartbeats == 3);
    CHECK(status != NULL && strstr(status->reason, "Another process") != NULL);

    /* the lease lapsed on the server: checked out again at once */
    portal.lease_ending = "expired";
    CHECK_STR(state_after_heartbeat(client, &status), "live");
    CHECK(portal.checkouts == 2);
    portal.lease_ending = NULL;

    /* the server down: retrying while the lease lasts */
    lc_client_set_retries(client, 0);
    fake_server_stop(server);
    CHECK_STR(state_after_heartbeat(client, &status), "retrying");
    CHECK(status != NULL && status->held && status->next_heartbeat_at > portal.now - 1);
    CHECK_STR(status ? status->error_code : NULL, "network_error");
    server = fake_server_start(portal_handle, &portal);
    lc_client_set_server(client, fake_server_url(server));

    /* revoked in the portal: lost, never taken back, and offline validation agrees */
    portal.lease_ending = "revoked";
    CHECK_STR(state_after_heartbeat(client, &status), "lost");
    CHECK(status != NULL && !status->held);
    CHECK(status != NULL && strstr(status->reason, "revoked") != NULL);
    CHECK(portal.checkouts == 2);
    CHECK_STATUS(lc_validate(client, LC_OFFLINE, &result), LC_OK, client);
    CHECK_STR(result ? result->code : NULL, LC_LEASE_EXPIRED);
    lc_validation_free(result);
    lc_lease_status_free(status);

    CHECK_STATUS(lc_checkin(client, &lease), LC_OK, client);
    CHECK(portal.checkins == 1);
    lc_lease_free(lease);
    document = lease_file(folder);
    CHECK(cJSON_IsNull(cJSON_GetObjectItem(document, "lease")));
    cJSON_Delete(document);

    /* a lease a heartbeat keeps is given back when the handle goes */
    portal.lease_ending = NULL;
    CHECK_STATUS(lc_checkout(client, NULL, NULL, NULL, NULL), LC_OK, client);
    lc_client_free(client);
    CHECK(portal.checkins == 2);

    remove_tree(folder);
    free(folder);
    fake_server_stop(server);
    signer_free(portal.signer);
}

static void borrowing(void)
{
    portal portal = {
        .signer = signer_new("k1"), .now = 1780315200, .product = "cadpro", .verdict = "VALID"};
    fake_server *server = fake_server_start(portal_handle, &portal);
    char *folder = make_temp_folder();
    lc_client *client = portal_client(&portal, fake_server_url(server), folder);
    lc_lease *lease = NULL;
    CHECK_STATUS(lc_borrow(client, 0, "L-TEST-0001", "secret", NULL, &lease), LC_ERR_USAGE,
                 client);
    CHECK_STATUS(lc_borrow(client, 3, "L-TEST-0001", "secret", NULL, &lease), LC_OK, client);
    CHECK(lease != NULL && lease->borrowed && lease->expires_at == portal.now + 3 * 86400);
    lc_lease_free(lease);
    lc_client_free(client); /* a borrowed seat stays borrowed */
    CHECK(portal.checkins == 0);

    /* a later process, on a laptop away from the office */
    char *dead = dead_url();
    client = portal_client(&portal, dead, folder);
    portal.now += 86400;
    lc_validation *result = NULL;
    CHECK_STATUS(lc_validate(client, LC_ONLINE, &result), LC_OK, client);
    CHECK(result != NULL && result->valid && !result->online);
    lc_validation_free(result);
    lc_lease_status *status = NULL;
    CHECK_STATUS(lc_lease_status_get(client, &status), LC_OK, client);
    CHECK_STR(status ? status->state : NULL, "borrowed");
    lc_lease_status_free(status);
    CHECK_STATUS(lc_checkout(client, NULL, NULL, NULL, &lease), LC_OK, client);
    CHECK(lease != NULL && lease->borrowed);
    lc_lease_free(lease);
    portal.now += 3 * 86400;
    CHECK_STATUS(lc_validate(client, LC_OFFLINE, &result), LC_OK, client);
    CHECK_STR(result ? result->code : NULL, LC_LEASE_EXPIRED);
    lc_validation_free(result);
    lc_client_free(client);
    free(dead);

    /* another product's license: refused before any seat */
    client = portal_client(&portal, fake_server_url(server), folder);
    lc_client_set_product(client, "femsolver");
    lc_client_set_installation_id(client, "inst-test-1");
    CHECK_STATUS(lc_checkout(client, "L-TEST-0001", "secret", NULL, &lease),
                 LC_ERR_WRONG_PRODUCT, client);
    CHECK(portal.checkouts == 1);
    lc_client_free(client);

    remove_tree(folder);
    free(folder);
    fake_server_stop(server);
    signer_free(portal.signer);
}

void test_leases(void)
{
    checkout_and_heartbeats();
    borrowing();
}
