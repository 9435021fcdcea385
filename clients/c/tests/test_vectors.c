/* Every vector of clients/vectors/vectors.json, set up as the Python kit's test_vectors.py
 * sets it up: the C library must give the verdicts the Python kit (the reference) gives. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "internal.h"
#include "support.h"
#include "tests.h"

static cJSON *load_vectors(void)
{
    char *text = read_file_text(VECTORS_FILE);
    if (text == NULL) {
        fprintf(stderr, "cannot read %s\n", VECTORS_FILE);
        exit(2);
    }
    cJSON *vectors = cJSON_Parse(text);
    free(text);
    return vectors;
}

static const char *text_of(const cJSON *object, const char *name)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(object, name);
    return cJSON_IsString(item) ? item->valuestring : NULL;
}

/* The data folder as the kit leaves it, with the vector's certificate and state. */
static void store(const char *folder, const cJSON *vector, const char *server)
{
    cJSON *document = cJSON_CreateObject();
    cJSON_AddNumberToObject(document, "version", 1);
    cJSON_AddStringToObject(document, "server", server);
    cJSON_AddStringToObject(document, "license_id", "L-7KQX-M2PD");
    const char *stored_in = text_of(vector, "stored_in");
    if (strcmp(stored_in, LEASE_FILE) == 0) {
        cJSON *lease = cJSON_AddObjectToObject(document, "lease");
        cJSON_AddStringToObject(lease, "certificate", text_of(vector, "certificate"));
        cJSON_AddStringToObject(lease, "lease_id", "LS-4HXN-82QW");
    } else {
        cJSON_AddStringToObject(document, "installation_id", text_of(vector, "installation_id"));
        cJSON_AddStringToObject(document, "machine_name", "CAD-WS-07");
        cJSON_AddStringToObject(document, "certificate", text_of(vector, "certificate"));
        cJSON_AddStringToObject(document, "activated_at", text_of(vector, "now"));
        cJSON_AddStringToObject(document, "source",
                                cJSON_IsTrue(cJSON_GetObjectItem(vector, "activated_offline"))
                                    ? "offline"
                                    : "online");
    }
    char *path = path_join(folder, stored_in);
    char *text = cJSON_PrintUnformatted(document);
    write_file_text(path, text);
    free(path);
    cJSON_free(text);
    cJSON_Delete(document);
    cJSON *state = cJSON_CreateObject();
    cJSON_AddItemToObject(state, "last_seen",
                          cJSON_Duplicate(cJSON_GetObjectItem(vector, "last_seen"), true));
    cJSON_AddItemToObject(state, "last_online_ok",
                          cJSON_Duplicate(cJSON_GetObjectItem(vector, "last_online_ok"), true));
    path = path_join(folder, STATE_FILE);
    text = cJSON_PrintUnformatted(state);
    write_file_text(path, text);
    free(path);
    cJSON_free(text);
    cJSON_Delete(state);
}

static lc_client *client_for(const cJSON *vectors, const cJSON *vector, const char *folder,
                             int64_t *now)
{
    const cJSON *defaults = cJSON_GetObjectItem(vectors, "defaults");
    parse_time(text_of(vector, "now"), now);
    lc_client *client;
    lc_client_new(&client);
    lc_client_set_data_dir(client, folder);
    lc_client_set_product(client, text_of(vector, "product"));
    lc_client_set_installation_id(client, text_of(vector, "installation_id"));
    char *jwks = cJSON_PrintUnformatted(cJSON_GetObjectItem(vectors, "jwks"));
    CHECK_STATUS(lc_client_set_jwks_text(client, jwks), LC_OK, client);
    cJSON_free(jwks);
    lc_client_set_grace_period(
        client, (int64_t)cJSON_GetObjectItem(defaults, "grace_period_seconds")->valuedouble);
    lc_client_set_clock_tolerance(
        client, (int64_t)cJSON_GetObjectItem(defaults, "clock_tolerance_seconds")->valuedouble);
    lc_client_set_clock(client, fixed_clock, now);
    lc_client_set_retries(client, 0);
    lc_client_set_timeout_ms(client, 2000);
    return client;
}

static void expect_time(const char *vector, const char *name, int64_t actual,
                        const cJSON *expected)
{
    int64_t moment = LC_NO_TIME;
    if (cJSON_IsString(expected))
        parse_time(expected->valuestring, &moment);
    check_count++;
    if (moment != actual) {
        check_failures++;
        fprintf(stderr, "vector %s: %s is %lld, expected %s\n", vector, name, (long long)actual,
                cJSON_IsString(expected) ? expected->valuestring : "null");
    }
}

static void certificate_vectors(const cJSON *vectors, const char *dead)
{
    const cJSON *vector;
    int count = 0;
    cJSON_ArrayForEach(vector, cJSON_GetObjectItem(vectors, "certificates"))
    {
        const char *name = text_of(vector, "name");
        char *folder = make_temp_folder();
        store(folder, vector, dead);
        int64_t now;
        lc_client *client = client_for(vectors, vector, folder, &now);
        bool unreachable = strcmp(text_of(vector, "server"), "unreachable") == 0;
        lc_validation *result = NULL;
        CHECK_STATUS(lc_validate(client, unreachable ? LC_ONLINE : LC_OFFLINE, &result), LC_OK,
                     client);
        const cJSON *expect = cJSON_GetObjectItem(vector, "expect");
        if (result != NULL) {
            check_count++;
            if (strcmp(result->code, text_of(expect, "code")) != 0 ||
                result->valid != cJSON_IsTrue(cJSON_GetObjectItem(expect, "valid")) ||
                result->online != cJSON_IsTrue(cJSON_GetObjectItem(expect, "online"))) {
                check_failures++;
                fprintf(stderr, "vector %s: %s valid=%d online=%d, expected %s (%s)\n", name,
                        result->code, result->valid, result->online, text_of(expect, "code"),
                        result->reason);
            }
            expect_time(name, "expires_at", result->expires_at,
                        cJSON_GetObjectItem(expect, "expires_at"));
            expect_time(name, "grace_until", result->grace_until,
                        cJSON_GetObjectItem(expect, "grace_until"));
            const cJSON *features = cJSON_GetObjectItem(expect, "features");
            check_count++;
            bool same = (size_t)cJSON_GetArraySize(features) == result->feature_count;
            for (size_t i = 0; same && i < result->feature_count; i++)
                same = strcmp(cJSON_GetArrayItem(features, (int)i)->valuestring,
                              result->features[i]) == 0;
            if (!same) {
                check_failures++;
                fprintf(stderr, "vector %s: the features differ\n", name);
            }
        }
        lc_validation_free(result);
        lc_client_free(client);
        remove_tree(folder);
        free(folder);
        count++;
    }
    CHECK(count >= 20);
}

static const char *replayed_answer;

static response answer_validation(const request *incoming, void *user)
{
    (void)user;
    if (strcmp(incoming->path, "/api/v1/validations") != 0)
        return error_response(404, "not_found", "No such route.", NULL);
    cJSON *body = cJSON_CreateObject();
    cJSON_AddStringToObject(body, "signed_answer", replayed_answer);
    return json_response(200, body);
}

/* The server's signed answers, replayed to a request with the vector's nonce: an accepted
 * one gives the answer's verdict online, a rejected one is as good as none (the certificate
 * alone, offline). */
static void answer_vectors(const cJSON *vectors)
{
    fake_server *server = fake_server_start(answer_validation, NULL);
    const cJSON *certificates = cJSON_GetObjectItem(vectors, "certificates");
    const cJSON *vector;
    int count = 0;
    cJSON_ArrayForEach(vector, cJSON_GetObjectItem(vectors, "answers"))
    {
        const char *name = text_of(vector, "name");
        const cJSON *certificate = NULL, *candidate;
        cJSON_ArrayForEach(candidate, certificates)
        {
            if (strcmp(text_of(candidate, "name"), text_of(vector, "certificate_name")) == 0)
                certificate = candidate;
        }
        cJSON *setup = cJSON_Duplicate(certificate, true);
        cJSON_ReplaceItemInObject(setup, "now", cJSON_CreateString(text_of(vector, "now")));
        char *folder = make_temp_folder();
        store(folder, setup, fake_server_url(server));
        int64_t now;
        lc_client *client = client_for(vectors, setup, folder, &now);
        client->fixed_nonce = text_of(vector, "nonce");
        replayed_answer = text_of(vector, "answer");
        lc_validation *result = NULL;
        CHECK_STATUS(lc_validate(client, LC_ONLINE, &result), LC_OK, client);
        bool accepted = strcmp(text_of(vector, "expect"), "accepted") == 0;
        if (result != NULL) {
            check_count++;
            if (result->online != accepted) {
                check_failures++;
                fprintf(stderr, "answer %s: online=%d, expected %s (%s)\n", name, result->online,
                        text_of(vector, "expect"), result->reason);
            }
            if (accepted) {
                /* the answer's own code: its payload is the middle part of the token */
                jws_token token;
                jws_error error;
                CHECK(jws_parse(replayed_answer, &token, &error));
                CHECK_STR(result->code, json_any_str(token.claims, "code"));
                jws_token_clear(&token);
            }
            if (cJSON_GetObjectItem(vector, "expires_at") != NULL)
                expect_time(name, "expires_at", result->expires_at,
                            cJSON_GetObjectItem(vector, "expires_at"));
        }
        lc_validation_free(result);
        lc_client_free(client);
        cJSON_Delete(setup);
        remove_tree(folder);
        free(folder);
        count++;
    }
    CHECK(count >= 10);
    fake_server_stop(server);
}

static void installation_vector(const cJSON *vectors)
{
    const cJSON *installation = cJSON_GetObjectItem(vectors, "installation");
    char *id = hash_installation_id(text_of(installation, "namespace"),
                                    text_of(installation, "machine_identifier"));
    CHECK_STR(id, text_of(installation, "installation_id"));
    free(id);
}

void test_vectors(void)
{
    cJSON *vectors = load_vectors();
    char *dead = dead_url();
    certificate_vectors(vectors, dead);
    answer_vectors(vectors);
    installation_vector(vectors);
    free(dead);
    cJSON_Delete(vectors);
}
