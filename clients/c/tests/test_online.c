/* Activation, online validation, the grace period and deactivation against a fake portal
 * over real HTTP. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "internal.h"
#include "portal.h"
#include "tests.h"

#define DAY 86400

static cJSON *stored(const char *folder, const char *name)
{
    char *path = path_join(folder, name);
    char *text = read_file_text(path);
    free(path);
    cJSON *document = text ? cJSON_Parse(text) : NULL;
    free(text);
    return document;
}

static void activate_validate_deactivate(void)
{
    portal portal = {
        .signer = signer_new("k1"), .now = 1780315200, .product = "cadpro", .verdict = "VALID"};
    fake_server *server = fake_server_start(portal_handle, &portal);
    char *folder = make_temp_folder();
    lc_client *client = portal_client(&portal, fake_server_url(server), folder);

    lc_validation *result = NULL;
    CHECK_STATUS(lc_activate(client, "L-TEST-0001", "secret", "CAD-WS-07", &result), LC_OK,
                 client);
    CHECK(portal.activations == 1);
    CHECK_STR(portal.sent_product, "cadpro"); /* the server refuses another product's license */
    /* the server just issued it: checked online, and the reason says so */
    CHECK(result != NULL && result->valid && result->online);
    CHECK(result != NULL && strncmp(result->reason, "Activated online: the license server at ",
                                    40) == 0);
    CHECK(result != NULL && result->feature_count == 1);
    lc_validation_free(result);
    cJSON *activation = stored(folder, ACTIVATION_FILE);
    CHECK_STR(json_str(activation, "server"), fake_server_url(server));
    CHECK_STR(json_str(activation, "machine_name"), "CAD-WS-07");
    CHECK_STR(json_str(activation, "password"), "secret");
    CHECK_STR(json_str(activation, "source"), "online");
    cJSON_Delete(activation);
    cJSON *state = stored(folder, STATE_FILE);
    CHECK_STR(json_str(state, "server"), fake_server_url(server)); /* kept beyond deactivation */
    CHECK_STR(json_str(state, "machine_name"), "CAD-WS-07");
    cJSON_Delete(state);
    cJSON *keys = stored(folder, KEYS_FILE);
    CHECK(json_obj(keys, "jwks") != NULL);
    cJSON_Delete(keys);

    /* online: the signed answer's features (newer than the certificate's) */
    portal.now += 3600;
    CHECK_STATUS(lc_validate(client, LC_ONLINE, &result), LC_OK, client);
    CHECK(result != NULL && result->valid && result->online);
    CHECK_STR(result ? result->code : NULL, LC_VALID);
    CHECK(result != NULL && result->feature_count == 2);
    lc_validation_free(result);
    bool has;
    CHECK_STATUS(lc_has_feature(client, "fem", &has), LC_OK, client);
    CHECK(has);
    state = stored(folder, STATE_FILE);
    CHECK_STR(json_str(state, "last_online_ok"), "2026-06-01T13:00:00Z");
    CHECK(json_str(state, "answer") != NULL);
    cJSON_Delete(state);

    /* the server down: valid within the grace period of the last online check, then not */
    portal.verdict = NULL;
    portal.now += 2 * DAY;
    CHECK_STATUS(lc_validate(client, LC_ONLINE, &result), LC_OK, client);
    CHECK(result != NULL && result->valid && !result->online);
    CHECK(result != NULL && result->grace_until == 1780315200 + 3600 + 7 * DAY);
    CHECK(result != NULL && strstr(result->reason, "(5 days of grace left)") != NULL);
    lc_validation_free(result);
    portal.now += 6 * DAY;
    CHECK_STATUS(lc_validate(client, LC_ONLINE, &result), LC_OK, client);
    CHECK_STR(result ? result->code : NULL, LC_GRACE_EXPIRED);
    CHECK(result != NULL && !result->valid && result->feature_count == 0);
    CHECK(result != NULL && strstr(result->reason, "its grace period of 7 days ended on "
                                                   "2026-06-08T13:00:00Z") != NULL);
    lc_validation_free(result);

    /* deactivated in the portal: DEACTIVATED online, and it sticks offline */
    portal.verdict = LC_DEACTIVATED;
    CHECK_STATUS(lc_validate(client, LC_ONLINE, &result), LC_OK, client);
    CHECK_STR(result ? result->code : NULL, LC_DEACTIVATED);
    CHECK(result != NULL && result->online && !result->valid);
    /* what happened and the next step, naming the portal */
    CHECK(result != NULL && strstr(result->reason, "This machine was deactivated on the license "
                                                   "server. Activate again with") != NULL);
    CHECK(result != NULL && strstr(result->reason, fake_server_url(server)) != NULL);
    lc_validation_free(result);
    CHECK_STATUS(lc_validate(client, LC_OFFLINE, &result), LC_OK, client);
    CHECK_STR(result ? result->code : NULL, LC_DEACTIVATED);
    CHECK(result != NULL && strstr(result->reason, "(Checked online on 2026-06-09T13:00:00Z; "
                                                   "validate online to update.)") != NULL);
    lc_validation_free(result);

    lc_status_report *report = NULL;
    CHECK_STATUS(lc_status_get(client, LC_OFFLINE, &report), LC_OK, client);
    CHECK(report != NULL && report->activated);
    CHECK_STR(report ? report->source : NULL, "online");
    CHECK_STR(report ? report->product : NULL, "cadpro");
    char *json = NULL;
    CHECK(report != NULL && lc_status_report_to_json(report, &json) == LC_OK);
    cJSON *printed = json ? cJSON_Parse(json) : NULL;
    CHECK(cJSON_IsObject(cJSON_GetObjectItem(printed, "validation")));
    CHECK(cJSON_IsNull(cJSON_GetObjectItem(printed, "lease")));
    CHECK_STR(json_str(json_obj(printed, "validation"), "code"), LC_DEACTIVATED);
    cJSON_Delete(printed);
    lc_free(json);
    lc_status_report_free(report);

    /* deactivate; the server and the machine name outlive it */
    CHECK_STATUS(lc_deactivate(client, NULL), LC_OK, client);
    CHECK(portal.deactivations == 1);
    CHECK(stored(folder, ACTIVATION_FILE) == NULL);
    CHECK_STATUS(lc_validate(client, LC_OFFLINE, &result), LC_OK, client);
    CHECK_STR(result ? result->code : NULL, LC_NOT_ACTIVATED);
    lc_validation_free(result);
    CHECK_STATUS(lc_deactivate(client, NULL), LC_ERR_NOT_ACTIVATED, client);
    lc_client_free(client);

    /* activating again needs neither the server nor the machine name */
    lc_client_new(&client);
    lc_client_set_product(client, "cadpro");
    lc_client_set_data_dir(client, folder);
    lc_client_set_installation_id(client, "inst-test-1");
    lc_client_set_clock(client, fixed_clock, &portal.now);
    portal.verdict = LC_VALID;
    CHECK_STATUS(lc_activate(client, "L-TEST-0001", "secret", NULL, NULL), LC_OK, client);
    CHECK_STR(portal.sent_machine, "CAD-WS-07");
    CHECK(portal.activations == 2);
    lc_client_free(client);

    remove_tree(folder);
    free(folder);
    fake_server_stop(server);
    signer_free(portal.signer);
}

static void refusals(void)
{
    portal portal = {
        .signer = signer_new("k1"), .now = 1780315200, .product = "cadpro", .verdict = "VALID"};
    fake_server *server = fake_server_start(portal_handle, &portal);
    char *folder = make_temp_folder();
    lc_client *client = portal_client(&portal, fake_server_url(server), folder);

    /* another product's license: refused by the server before any seat, nothing stored */
    lc_client_set_product(client, "femsolver");
    lc_client_set_installation_id(client, "inst-test-1");
    CHECK_STATUS(lc_activate(client, "L-TEST-0001", "secret", "WS", NULL), LC_ERR_WRONG_PRODUCT,
                 client);
    CHECK_STR(lc_client_error_code(client), "wrong_product");
    CHECK(lc_client_error_http_status(client) == 409);
    CHECK(strstr(lc_client_error_details(client), "\"requested\":\"femsolver\"") != NULL);
    CHECK(strstr(lc_client_error_message(client), "No seat was taken") != NULL);
    CHECK(portal.activations == 0);
    CHECK(stored(folder, ACTIVATION_FILE) == NULL);

    lc_client_set_product(client, "cadpro");
    lc_client_set_installation_id(client, "inst-test-1");
    CHECK_STATUS(lc_activate(client, "L-TEST-0001", "wrong", NULL, NULL),
                 LC_ERR_INVALID_CREDENTIALS, client);
    CHECK_STR(lc_client_error_message(client), "The license ID or the password is wrong.");
    CHECK_STATUS(lc_activate(client, "", "secret", NULL, NULL), LC_ERR_USAGE, client);

    /* a certificate signed by a key the server does not publish */
    lc_client_set_jwks_text(client, "{\"keys\": [{\"kty\": \"OKP\", \"crv\": \"Ed25519\", "
                                    "\"kid\": \"k1\", \"x\": "
                                    "\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"}]}");
    CHECK_STATUS(lc_activate(client, "L-TEST-0001", "secret", NULL, NULL),
                 LC_ERR_INVALID_CERTIFICATE, client);
    CHECK(stored(folder, ACTIVATION_FILE) == NULL);
    lc_client_free(client);

    /* nobody there: a network error after the retries */
    char *dead = dead_url();
    lc_client_new(&client);
    lc_client_set_server(client, dead);
    lc_client_set_data_dir(client, folder);
    lc_client_set_retries(client, 1);
    CHECK_STATUS(lc_activate(client, "L-TEST-0001", "secret", NULL, NULL), LC_ERR_NETWORK,
                 client);
    CHECK_STR(lc_client_error_code(client), "network_error");
    lc_client_set_server(client, "ftp://example.com");
    CHECK_STATUS(lc_activate(client, "L-TEST-0001", "secret", NULL, NULL), LC_ERR_USAGE, client);
    CHECK_STR(lc_client_error_code(client), "bad_url");
    lc_client_free(client);
    free(dead);

    remove_tree(folder);
    free(folder);
    fake_server_stop(server);
    signer_free(portal.signer);
}

static int unavailable_calls;

static response always_unavailable(const request *incoming, void *user)
{
    (void)incoming;
    (void)user;
    unavailable_calls++;
    response answer = error_response(503, "service_unavailable", "Down for maintenance.", NULL);
    answer.extra_header = "Retry-After: 0";
    return answer;
}

static void retries_then_gives_up(void)
{
    fake_server *server = fake_server_start(always_unavailable, NULL);
    char *folder = make_temp_folder();
    lc_client *client;
    lc_client_new(&client);
    lc_client_set_server(client, fake_server_url(server));
    lc_client_set_data_dir(client, folder);
    lc_client_set_retries(client, 2);
    CHECK_STATUS(lc_activate(client, "L-1", "secret", NULL, NULL), LC_ERR_SERVICE_UNAVAILABLE,
                 client);
    CHECK(fake_server_requests(server) == 3); /* a 503 is retried, Retry-After honoured */
    CHECK_STR(lc_client_error_message(client), "Down for maintenance.");
    CHECK(strstr(lc_client_error_details(client), "\"retry_after\":0") != NULL);
    lc_client_free(client);
    remove_tree(folder);
    free(folder);
    fake_server_stop(server);
}

static response seats_taken(const request *incoming, void *user)
{
    (void)incoming;
    (void)user;
    cJSON *details = cJSON_Parse("{\"license_id\": \"L-7KQX-M2PD\", \"seats\": 2, \"machines\": "
                                 "[{\"machine_name\": \"CAD-WS-01\", \"expires_at\": "
                                 "\"2030-01-15T09:15:00Z\"}, {\"machine_name\": \"LAPTOP-3\", "
                                 "\"expires_at\": \"2030-01-20T00:00:00Z\", \"borrowed\": true}]}");
    return error_response(409, "no_seats_available", "No seats.", details);
}

/* the message says what happened and what to do next, as the Python kit's does */
static void no_seats_explained(void)
{
    fake_server *server = fake_server_start(seats_taken, NULL);
    char *folder = make_temp_folder();
    lc_client *client;
    lc_client_new(&client);
    lc_client_set_server(client, fake_server_url(server));
    lc_client_set_data_dir(client, folder);
    lc_client_set_jwks_text(client, "{\"keys\": [{\"kty\": \"OKP\", \"crv\": \"Ed25519\", "
                                    "\"x\": \"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"}]}");
    CHECK_STATUS(lc_activate(client, "L-7KQX-M2PD", "secret", NULL, NULL), LC_ERR_NO_SEATS,
                 client);
    char *expected = format_text(
        "All 2 seats of license L-7KQX-M2PD are in use (on CAD-WS-01 (until 2030-01-15 09:15 "
        "UTC), LAPTOP-3 (borrowed until 2030-01-20 00:00 UTC)): ask your administrator to free "
        "a seat in the portal (%s).",
        fake_server_url(server));
    CHECK_STR(lc_client_error_message(client), expected);
    free(expected);
    lc_client_free(client);
    remove_tree(folder);
    free(folder);
    fake_server_stop(server);
}

/* the grace period and the clock tolerance are added to and subtracted from times: capped at
 * 100 years, so no setting can overflow them */
static void periods_capped(void)
{
    const int64_t century = (int64_t)100 * 366 * DAY;
    lc_client *client;
    lc_client_new(&client);
    CHECK_STATUS(lc_client_set_grace_period(client, century), LC_OK, client);
    CHECK_STATUS(lc_client_set_grace_period(client, century + 1), LC_ERR_USAGE, client);
    CHECK_STR(lc_client_error_code(client), "usage_error");
    CHECK_STATUS(lc_client_set_grace_period(client, INT64_MAX), LC_ERR_USAGE, client);
    CHECK_STATUS(lc_client_set_grace_period(client, -1), LC_ERR_USAGE, client);
    CHECK_STATUS(lc_client_set_clock_tolerance(client, century), LC_OK, client);
    CHECK_STATUS(lc_client_set_clock_tolerance(client, century + 1), LC_ERR_USAGE, client);
    CHECK_STATUS(lc_client_set_clock_tolerance(client, INT64_MAX), LC_ERR_USAGE, client);
    CHECK_STATUS(lc_client_set_clock_tolerance(client, -1), LC_ERR_USAGE, client);
    lc_client_free(client);

    /* the longest of both, the server down: still the arithmetic of ordinary times */
    portal portal = {
        .signer = signer_new("k1"), .now = 1780315200, .product = "cadpro", .verdict = "VALID"};
    fake_server *server = fake_server_start(portal_handle, &portal);
    char *folder = make_temp_folder();
    client = portal_client(&portal, fake_server_url(server), folder);
    lc_client_set_grace_period(client, century);
    lc_client_set_clock_tolerance(client, century);
    CHECK_STATUS(lc_activate(client, "L-TEST-0001", "secret", "WS", NULL), LC_OK, client);
    portal.verdict = NULL;
    portal.now += 3 * DAY;
    lc_validation *result = NULL;
    CHECK_STATUS(lc_validate(client, LC_ONLINE, &result), LC_OK, client);
    CHECK(result != NULL && result->valid && result->grace_until == 1780315200 + century);
    lc_validation_free(result);
    lc_client_free(client);
    remove_tree(folder);
    free(folder);
    fake_server_stop(server);
    signer_free(portal.signer);
}

/* a certificate stored with whitespace around it keeps the server's verdict offline */
static void verdict_sticks_to_padded_certificate(void)
{
    portal portal = {
        .signer = signer_new("k1"), .now = 1780315200, .product = "cadpro", .verdict = "VALID"};
    fake_server *server = fake_server_start(portal_handle, &portal);
    char *folder = make_temp_folder();
    lc_client *client = portal_client(&portal, fake_server_url(server), folder);
    CHECK_STATUS(lc_activate(client, "L-TEST-0001", "secret", "WS", NULL), LC_OK, client);
    cJSON *activation = stored(folder, ACTIVATION_FILE);
    char *padded = format_text("\n  %s \n", json_str(activation, "certificate"));
    json_set_str(activation, "certificate", padded);
    char *text = cJSON_Print(activation);
    char *path = path_join(folder, ACTIVATION_FILE);
    write_file_text(path, text);
    free(path);
    free(text);
    free(padded);
    cJSON_Delete(activation);

    lc_validation *result = NULL;
    CHECK_STATUS(lc_validate(client, LC_OFFLINE, &result), LC_OK, client);
    CHECK_STR(result ? result->code : NULL, LC_VALID);
    lc_validation_free(result);
    portal.verdict = LC_SUSPENDED;
    CHECK_STATUS(lc_validate(client, LC_ONLINE, &result), LC_OK, client);
    CHECK_STR(result ? result->code : NULL, LC_SUSPENDED);
    lc_validation_free(result);
    CHECK_STATUS(lc_validate(client, LC_OFFLINE, &result), LC_OK, client);
    CHECK_STR(result ? result->code : NULL, LC_SUSPENDED);
    CHECK(result != NULL && !result->valid);
    lc_validation_free(result);
    lc_client_free(client);
    remove_tree(folder);
    free(folder);
    fake_server_stop(server);
    signer_free(portal.signer);
}

/* a signed VALID with expires_at null: the license became perpetual, whatever the stored
 * certificate's exp still says (as the Python kit reports it) */
static void perpetual_answer(void)
{
    portal portal = {
        .signer = signer_new("k1"), .now = 1780315200, .product = "cadpro", .verdict = "VALID"};
    fake_server *server = fake_server_start(portal_handle, &portal);
    char *folder = make_temp_folder();
    lc_client *client = portal_client(&portal, fake_server_url(server), folder);
    lc_validation *result = NULL;
    CHECK_STATUS(lc_activate(client, "L-TEST-0001", "secret", "WS", &result), LC_OK, client);
    CHECK(result != NULL && result->expires_at == 1780315200 + 365 * DAY);
    lc_validation_free(result);
    portal.now += 3600;
    CHECK_STATUS(lc_validate(client, LC_ONLINE, &result), LC_OK, client);
    CHECK(result != NULL && result->valid && result->expires_at == 1780315200 + 365 * DAY);
    lc_validation_free(result);
    portal.perpetual = true;
    CHECK_STATUS(lc_validate(client, LC_ONLINE, &result), LC_OK, client);
    CHECK(result != NULL && result->valid && result->online);
    CHECK(result != NULL && result->expires_at == LC_NO_TIME);
    lc_validation_free(result);
    lc_client_free(client);
    remove_tree(folder);
    free(folder);
    fake_server_stop(server);
    signer_free(portal.signer);
}

void test_online(void)
{
    periods_capped();
    verdict_sticks_to_padded_certificate();
    perpetual_answer();
    no_seats_explained();
    activate_validate_deactivate();
    refusals();
    retries_then_gives_up();
}
