/* Offline activation: the request file, the portal's response file, the deactivation proof. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "internal.h"
#include "support.h"
#include "tests.h"

#define SECRET "dS3cr3t-0123456789abcdefghijklmnopqrstuvwxyz_AB"

static int64_t now = 1780315200;

static lc_client *offline_client(const char *folder, const signer *signer)
{
    lc_client *client;
    lc_client_new(&client);
    lc_client_set_product(client, "cadpro");
    lc_client_set_data_dir(client, folder);
    lc_client_set_installation_id(client, "inst-air-gapped");
    lc_client_set_clock(client, fixed_clock, &now);
    char *jwks = signer_jwks(signer);
    lc_client_set_jwks_text(client, jwks);
    free(jwks);
    return client;
}

/* The portal's response to `request_text`, its certificate signed by `signer`. */
static char *response_to(const char *request_text, const signer *signer, const char *extra)
{
    cJSON *request = cJSON_Parse(request_text);
    const char *nonce = cJSON_GetObjectItem(request, "nonce")->valuestring;
    cJSON *claims = cJSON_CreateObject();
    cJSON_AddStringToObject(claims, "license_id", "L-OFF-0001");
    cJSON_AddStringToObject(claims, "installation_id",
                            cJSON_GetObjectItem(request, "installation_id")->valuestring);
    cJSON_AddStringToObject(claims, "machine_name", "LAB-01");
    cJSON_AddStringToObject(claims, "product", "cadpro");
    cJSON_AddStringToObject(claims, "source", "offline");
    cJSON_AddStringToObject(claims, "nonce", nonce);
    cJSON_AddNumberToObject(claims, "iat", (double)now);
    cJSON_AddNumberToObject(claims, "exp", (double)(now + 365 * 86400));
    char *certificate = signer_sign(signer, claims, NULL);
    cJSON *response = cJSON_CreateObject();
    cJSON_AddStringToObject(response, "type", "activation_response");
    cJSON_AddNumberToObject(response, "version", 1);
    cJSON_AddStringToObject(response, "license_id", "L-OFF-0001");
    cJSON_AddStringToObject(response, "installation_id",
                            cJSON_GetObjectItem(request, "installation_id")->valuestring);
    cJSON_AddStringToObject(response, "product", "CADPRO"); /* codes compare without case */
    cJSON_AddStringToObject(response, "nonce", nonce);
    cJSON_AddStringToObject(response, "issued_at", "2026-06-01T12:00:00+00:00");
    cJSON_AddStringToObject(response, "certificate", certificate);
    cJSON_AddStringToObject(response, "deactivation_secret", SECRET);
    if (extra != NULL)
        cJSON_AddStringToObject(response, extra, "riding along");
    char *text = cJSON_Print(response);
    free(certificate);
    cJSON_Delete(claims);
    cJSON_Delete(request);
    cJSON_Delete(response);
    return text;
}

static void request_install_deactivate(void)
{
    signer *portal = signer_new("offline-key");
    char *folder = make_temp_folder();
    lc_client *client = offline_client(folder, portal);
    char *request = NULL;
    CHECK_STATUS(lc_offline_request(client, " L-OFF-0001 ", "LAB\x01" "01", &request), LC_OK,
                 client);
    cJSON *document = request ? cJSON_Parse(request) : NULL;
    CHECK_STR(json_str(document, "type"), "activation_request");
    CHECK_STR(json_str(document, "license_id"), "L-OFF-0001");
    CHECK_STR(json_str(document, "machine_name"), "LAB 01"); /* control characters: spaces */
    CHECK_STR(json_str(document, "product"), "cadpro");
    CHECK_STR(json_str(document, "requested_at"), "2026-06-01T12:00:00+00:00");
    CHECK(json_str(document, "nonce") != NULL && strlen(json_str(document, "nonce")) == 32);
    cJSON_Delete(document);

    /* a response with a field too many, or the request itself, is refused as malformed */
    char *bad = response_to(request, portal, "signing_key");
    CHECK_STATUS(lc_install_offline_response(client, bad, strlen(bad), NULL),
                 LC_ERR_INVALID_RESPONSE_FILE, client);
    CHECK(strstr(lc_client_error_details(client), "\"field\":\"signing_key\"") != NULL);
    free(bad);
    CHECK_STATUS(lc_install_offline_response(client, request, strlen(request), NULL),
                 LC_ERR_INVALID_RESPONSE_FILE, client);
    CHECK(strstr(lc_client_error_message(client), "this is the request") != NULL);
    CHECK_STATUS(lc_install_offline_response(client, "{\"type\": \"activ", 15, NULL),
                 LC_ERR_INVALID_RESPONSE_FILE, client);

    /* signed by a key this program does not trust */
    signer *stranger = signer_new("offline-key");
    char *forged = response_to(request, stranger, NULL);
    CHECK_STATUS(lc_install_offline_response(client, forged, strlen(forged), NULL),
                 LC_ERR_UNTRUSTED_RESPONSE, client);
    CHECK_STR(lc_client_error_code(client), "invalid_certificate");
    free(forged);
    signer_free(stranger);

    /* a new request makes the responses to older ones useless */
    char *newer = NULL;
    CHECK_STATUS(lc_offline_request(client, "L-OFF-0001", NULL, &newer), LC_OK, client);
    char *older = response_to(request, portal, NULL);
    CHECK_STATUS(lc_install_offline_response(client, older, strlen(older), NULL),
                 LC_ERR_RESPONSE_MISMATCH, client);
    free(older);
    lc_free(request);
    request = newer;

    char *response = response_to(request, portal, NULL);
    lc_validation *result = NULL;
    CHECK_STATUS(lc_install_offline_response(client, response, strlen(response), &result), LC_OK,
                 client);
    CHECK(result != NULL && result->valid);
    CHECK_STR(result ? result->license_id : NULL, "L-OFF-0001");
    lc_validation_free(result);
    /* installing the same response again just validates */
    CHECK_STATUS(lc_install_offline_response(client, response, strlen(response), NULL), LC_OK,
                 client);
    /* air-gapped is its normal state: no grace period runs out */
    char *dead = dead_url();
    lc_client_set_server(client, dead);
    lc_client_set_retries(client, 0);
    now += 60 * 86400;
    CHECK_STATUS(lc_validate(client, LC_ONLINE, &result), LC_OK, client);
    CHECK(result != NULL && result->valid && result->grace_until == LC_NO_TIME);
    lc_validation_free(result);
    free(dead);

    lc_status_report *report = NULL;
    CHECK_STATUS(lc_status_get(client, LC_OFFLINE, &report), LC_OK, client);
    CHECK_STR(report ? report->source : NULL, "offline");
    lc_status_report_free(report);

    /* written outside the data folder, in a folder of this run's own (a shared
     * $TMPDIR/proof.json made parallel runs fail each other) */
    char *elsewhere = make_temp_folder();
    char *proof_path = path_join(elsewhere, "proof.json");
    char *proof = NULL;
    CHECK_STATUS(lc_deactivate_offline(client, proof_path, &proof), LC_OK, client);
    cJSON *written = proof ? cJSON_Parse(proof) : NULL;
    CHECK_STR(json_str(written, "type"), "deactivation_proof");
    CHECK_STR(json_str(written, "secret"), SECRET);
    CHECK_STR(json_str(written, "license_id"), "L-OFF-0001");
    cJSON_Delete(written);
    char *on_disk = read_file_text(proof_path);
    CHECK_STR(on_disk, proof);
    free(on_disk);
    CHECK_STATUS(lc_validate(client, LC_OFFLINE, &result), LC_OK, client);
    CHECK_STR(result ? result->code : NULL, LC_NOT_ACTIVATED);
    lc_validation_free(result);
    /* a lost proof file can be written again: the same proof */
    char *again = NULL;
    CHECK_STATUS(lc_deactivate_offline(client, NULL, &again), LC_OK, client);
    CHECK_STR(again, proof);
    lc_free(again);
    lc_free(proof);
    remove_tree(elsewhere);
    free(elsewhere);
    free(proof_path);
    free(response);
    lc_free(request);
    lc_client_free(client);
    remove_tree(folder);
    free(folder);
    signer_free(portal);
}

static void refusals(void)
{
    signer *portal = signer_new("offline-key");
    char *folder = make_temp_folder();
    lc_client *client = offline_client(folder, portal);
    char *text = NULL;
    CHECK_STATUS(lc_offline_request(client, "", NULL, &text), LC_ERR_USAGE, client);
    CHECK_STR(lc_client_error_code(client), "bad_license_id");
    lc_client_set_product(client, NULL);
    CHECK_STATUS(lc_offline_request(client, "L-1", NULL, &text), LC_ERR_USAGE, client);
    CHECK_STR(lc_client_error_code(client), "product_required");
    CHECK_STATUS(lc_deactivate_offline(client, NULL, &text), LC_ERR_NOT_ACTIVATED, client);
    /* an online activation has no secret to prove anything with */
    char *path = path_join(folder, ACTIVATION_FILE);
    write_file_text(path, "{\"license_id\": \"L-1\", \"certificate\": \"x.y.z\"}");
    CHECK_STATUS(lc_deactivate_offline(client, NULL, &text), LC_ERR_NOT_OFFLINE_ACTIVATION,
                 client);
    free(path);
    lc_client_free(client);
    remove_tree(folder);
    free(folder);
    signer_free(portal);
}

void test_offline(void)
{
    request_install_deactivate();
    refusals();
}
