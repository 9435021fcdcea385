/* Offline activation for air-gapped machines: the request file, the portal's response file
 * and the deactivation proof, as the Python kit's offline.py and client.py make and check
 * them. Each file is one JSON object in UTF-8, at most 16 KiB, with exactly its fields. */
#include <ctype.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "internal.h"

#define MAX_FILE_BYTES (16 * 1024)
#define MAX_ID_LENGTH 128
#define MAX_NAME_LENGTH 200

static const char *const RESPONSE_FIELDS[] = {
    "type",    "version",     "license_id",  "installation_id",    "product",
    "nonce",   "issued_at",   "certificate", "deactivation_secret"};
#define RESPONSE_FIELD_COUNT (sizeof RESPONSE_FIELDS / sizeof *RESPONSE_FIELDS)

bool same_secret(const char *a, const char *b)
{
    if (a == NULL || b == NULL)
        return false;
    size_t length = strlen(a);
    /* constant time in the content: a nonce or secret is not guessed byte by byte */
    return length == strlen(b) && CRYPTO_memcmp(a, b, length) == 0;
}

/* UTF-8 characters in `text` (Python's len() of the decoded text). */
static size_t characters(const char *text)
{
    size_t count = 0;
    for (const unsigned char *p = (const unsigned char *)text; *p != '\0'; p++)
        count += (*p & 0xc0) != 0x80;
    return count;
}

static bool blank(const char *text)
{
    for (; *text != '\0'; text++) {
        if (!isspace((unsigned char)*text))
            return false;
    }
    return true;
}

static char *strip(const char *text)
{
    while (isspace((unsigned char)*text))
        text++;
    size_t length = strlen(text);
    while (length > 0 && isspace((unsigned char)text[length - 1]))
        length--;
    return strndup(text, length);
}

/* A machine name the portal accepts: control characters (C0, DEL, C1) become spaces, at most
 * 200 characters, never empty. */
static char *clean_machine_name(const char *given)
{
    char *name = given && given[0] ? strdup(given) : host_name();
    if (name == NULL)
        return NULL;
    size_t used = 0;
    for (size_t i = 0; name[i] != '\0'; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c < 0x20 || c == 0x7f) {
            name[used++] = ' ';
        } else if (c == 0xc2 && (unsigned char)name[i + 1] >= 0x80 &&
                   (unsigned char)name[i + 1] <= 0x9f) {
            name[used++] = ' ';
            i++;
        } else {
            name[used++] = (char)c;
        }
    }
    name[used] = '\0';
    char *stripped = strip(name);
    free(name);
    if (stripped == NULL)
        return NULL;
    size_t count = 0, at = 0;
    for (; stripped[at] != '\0'; at++) {
        if (((unsigned char)stripped[at] & 0xc0) != 0x80 && ++count > MAX_NAME_LENGTH)
            break;
    }
    stripped[at] = '\0';
    if (stripped[0] == '\0') {
        free(stripped);
        return strdup("unknown");
    }
    return stripped;
}

lc_status lc_offline_request(lc_client *client, const char *license_id,
                             const char *machine_name, char **request_text)
{
    if (client == NULL)
        return LC_ERR_USAGE;
    client_clear_error(client);
    if (request_text == NULL)
        return client_fail(client, LC_ERR_USAGE, "usage_error", NULL,
                           "lc_offline_request needs somewhere to put the request.");
    *request_text = NULL;
    if (client->product == NULL)
        return client_fail(client, LC_ERR_USAGE, "product_required", NULL,
                           "An offline request names the product: set the product "
                           "(--product CODE).");
    char *license = license_id ? strip(license_id) : strdup("");
    if (license == NULL)
        return client_fail_oom(client);
    if (license[0] == '\0' || characters(license) > MAX_ID_LENGTH) {
        free(license);
        return client_fail(client, LC_ERR_USAGE, "bad_license_id", NULL,
                           "The license ID is missing or too long (e.g. L-7KQX-M2PD).");
    }
    const char *installation;
    lc_status status = client_installation(client, &installation);
    char *name = status == LC_OK ? clean_machine_name(machine_name) : NULL;
    char *requested = iso_time_offset(client_now(client));
    char *nonce = random_urlsafe(24);
    cJSON *document = cJSON_CreateObject();
    cJSON *pending = NULL;
    if (status != LC_OK)
        goto done;
    if (name == NULL || requested == NULL || nonce == NULL || document == NULL ||
        !json_set_str(document, "type", "activation_request") ||
        !json_set(document, "version", cJSON_CreateNumber(1)) ||
        !json_set_str(document, "license_id", license) ||
        !json_set_str(document, "installation_id", installation) ||
        !json_set_str(document, "machine_name", name) ||
        !json_set_str(document, "product", client->product) ||
        !json_set_str(document, "requested_at", requested) ||
        !json_set_str(document, "nonce", nonce)) {
        status = client_fail_oom(client);
        goto done;
    }
    /* the pending request: only its own response may answer it */
    pending = cJSON_CreateObject();
    if (pending == NULL || !json_set_str(pending, "license_id", license) ||
        !json_set_str(pending, "installation_id", installation) ||
        !json_set_str(pending, "product", client->product) ||
        !json_set_str(pending, "requested_at", requested) ||
        !json_set_str(pending, "nonce", nonce) || !json_set_str(pending, "machine_name", name)) {
        status = client_fail_oom(client);
        goto done;
    }
    status = store_write(client, PENDING_FILE, pending);
    if (status != LC_OK)
        goto done;
    *request_text = json_print_indented(document, false);
    if (*request_text == NULL)
        status = client_fail_oom(client);
done:
    free(license);
    free(name);
    free(requested);
    free(nonce);
    cJSON_Delete(document);
    cJSON_Delete(pending);
    return status;
}

static lc_status bad_file(lc_client *client, const char *field, const char *problem)
{
    cJSON *details = cJSON_CreateObject();
    if (details != NULL) {
        cJSON_AddStringToObject(details, "problem", problem);
        if (field != NULL)
            cJSON_AddStringToObject(details, "field", field);
    }
    return client_fail(client, LC_ERR_INVALID_RESPONSE_FILE, "invalid_response", details,
                       "This is not a usable activation response: %s Use the response file the "
                       "portal gave for this machine's request, copied whole.",
                       problem);
}

static lc_status bad_field(lc_client *client, const char *field, const char *format,
                           const char *name)
{
    char *problem = format_text(format, name);
    if (problem == NULL)
        return client_fail_oom(client);
    lc_status status = bad_file(client, field, problem);
    free(problem);
    return status;
}

/* The fields of an activation response, or LC_ERR_INVALID_RESPONSE_FILE saying what is wrong.
 * Only the shape: whether it answers this machine's request is checked by the caller. */
static lc_status parse_response(lc_client *client, const char *text, size_t length,
                                cJSON **out)
{
    *out = NULL;
    if (length > MAX_FILE_BYTES)
        return bad_file(client, NULL, "The file is larger than 16 KiB.");
    if (!utf8_valid(text, length))
        return bad_file(client, NULL, "The file is not UTF-8 text.");
    cJSON *document = json_parse(text, length);
    if (document == NULL)
        return bad_file(client, NULL,
                        "The file is not JSON (is it complete? it may have been cut short).");
    lc_status status = LC_OK;
    const char *kind = json_any_str(document, "type");
    const cJSON *version = cJSON_GetObjectItemCaseSensitive(document, "version");
    if (!cJSON_IsObject(document)) {
        status = bad_file(client, NULL, "The file is not a JSON object.");
    } else if (kind == NULL || strcmp(kind, "activation_response") != 0) {
        status = bad_file(client, "type",
                          kind && strcmp(kind, "activation_request") == 0
                              ? "The file is not an activation response (this is the request: "
                                "take it to the portal)."
                              : "The file is not an activation response.");
    } else if (!cJSON_IsNumber(version) || version->valuedouble != 1.0) {
        char *shown = version ? cJSON_PrintUnformatted(version) : NULL;
        char *problem = format_text("Response version %s is not supported (expected 1).",
                                    shown ? shown : "None");
        cJSON_free(shown);
        status = problem ? bad_file(client, "version", problem) : client_fail_oom(client);
        free(problem);
    }
    for (const cJSON *member = document->child; status == LC_OK && member != NULL;
         member = member->next) {
        bool known = false;
        for (size_t i = 0; i < RESPONSE_FIELD_COUNT; i++)
            known = known || strcmp(member->string, RESPONSE_FIELDS[i]) == 0;
        if (!known)
            status = bad_field(client, member->string, "The file has an unknown field '%s'.",
                               member->string);
    }
    for (size_t i = 2; status == LC_OK && i < RESPONSE_FIELD_COUNT; i++) {
        const char *name = RESPONSE_FIELDS[i];
        const cJSON *value = cJSON_GetObjectItemCaseSensitive(document, name);
        if (value == NULL)
            status = bad_field(client, name, "The field '%s' is missing.", name);
        else if (!cJSON_IsString(value) || blank(value->valuestring))
            status = bad_field(client, name, "The field '%s' is not a non-empty text.", name);
    }
    static const char *const IDS[] = {"license_id", "installation_id", "product", "nonce"};
    for (size_t i = 0; status == LC_OK && i < sizeof IDS / sizeof *IDS; i++) {
        if (characters(json_any_str(document, IDS[i])) > MAX_ID_LENGTH)
            status = bad_field(client, IDS[i],
                               "The field '%s' is longer than 128 characters.", IDS[i]);
    }
    int64_t issued;
    if (status == LC_OK && !parse_time(json_any_str(document, "issued_at"), &issued))
        status = bad_file(client, "issued_at",
                          "The field 'issued_at' is not a date and time with a time zone.");
    if (status == LC_OK) {
        const char *secret = json_any_str(document, "deactivation_secret");
        size_t size = strlen(secret);
        bool urlsafe = true;
        for (const char *p = secret; *p != '\0'; p++)
            urlsafe = urlsafe && (isalnum((unsigned char)*p) || *p == '-' || *p == '_');
        if (size < 43 || size > MAX_ID_LENGTH || !urlsafe)
            status = bad_file(client, "deactivation_secret",
                              "The field 'deactivation_secret' is not 43+ url-safe characters.");
    }
    if (status != LC_OK) {
        cJSON_Delete(document);
        return status;
    }
    *out = document;
    return LC_OK;
}

static bool same_folded(const char *a, const char *b)
{
    char *x = strip(a), *y = strip(b);
    bool same = x != NULL && y != NULL && strcasecmp(x, y) == 0;
    free(x);
    free(y);
    return same;
}

static lc_status mismatch(lc_client *client, const char *problem, const char *field,
                          const char *message)
{
    cJSON *details = cJSON_CreateObject();
    if (details != NULL) {
        cJSON_AddStringToObject(details, "problem", problem);
        if (field != NULL)
            cJSON_AddStringToObject(details, "field", field);
    }
    return client_fail(client, LC_ERR_RESPONSE_MISMATCH, "response_mismatch", details, "%s",
                       message);
}

/* The response names what the pending request named: the same license (the portal answers
 * canonical IDs: compared without case), this installation, this product. */
static lc_status check_response_names(lc_client *client, const cJSON *fields,
                                      const cJSON *pending, const char *installation)
{
    const char *product = client->product ? client->product : json_any_str(pending, "product");
    const struct {
        const char *name;
        const char *words;
        const char *expected;
        bool folded;
    } checks[] = {
        {"license_id", "license id", json_any_str(pending, "license_id"), true},
        {"installation_id", "installation id", installation, false},
        {"product", "product", product, true},
    };
    for (size_t i = 0; i < sizeof checks / sizeof *checks; i++) {
        const char *found = json_any_str(fields, checks[i].name);
        const char *expected = checks[i].expected;
        bool same = expected != NULL && (checks[i].folded ? same_folded(found, expected)
                                                          : strcmp(found, expected) == 0);
        if (same)
            continue;
        char *message = format_text("This response is for %s '%s', but the request was for "
                                    "%s%s%s: it answers another request; make a new request on "
                                    "this machine.",
                                    checks[i].words, found, expected ? "'" : "",
                                    expected ? expected : "None", expected ? "'" : "");
        if (message == NULL)
            return client_fail_oom(client);
        lc_status status = mismatch(client, checks[i].name, checks[i].name, message);
        free(message);
        return status;
    }
    return LC_OK;
}

lc_status lc_install_offline_response(lc_client *client, const char *text, size_t length,
                                      lc_validation **out)
{
    if (client == NULL)
        return LC_ERR_USAGE;
    client_clear_error(client);
    if (out != NULL)
        *out = NULL;
    if (text == NULL)
        return client_fail(client, LC_ERR_USAGE, "usage_error", NULL,
                           "lc_install_offline_response needs the response's text.");
    cJSON *fields, *pending = NULL, *installed = NULL, *activation = NULL;
    lc_status status = parse_response(client, text, length, &fields);
    if (status != LC_OK)
        return status;
    keyset *keys = NULL;
    bool owned = false;
    jws_token certificate = {0};
    char *problem = NULL;
    char *now_text = NULL;
    const char *installation;
    const char *nonce = json_any_str(fields, "nonce");
    status = client_installation(client, &installation);
    if (status == LC_OK)
        status = store_read(client, PENDING_FILE, &pending);
    if (status != LC_OK)
        goto done;
    if (pending == NULL || !same_secret(json_any_str(pending, "nonce"), nonce)) {
        status = store_read(client, ACTIVATION_FILE, &installed);
        if (status != LC_OK)
            goto done;
        const char *stored = json_any_str(installed, "certificate");
        if (same_secret(json_any_str(installed, "request_nonce"), nonce) && stored != NULL &&
            strcmp(stored, json_any_str(fields, "certificate")) == 0) {
            goto validated; /* installing the same response again */
        }
        status = mismatch(client, "nonce", NULL,
                          pending ? "This response answers another request; make a new request "
                                    "on this machine."
                                  : "No activation request is pending on this machine (for this "
                                    "product and data folder). This response answers another "
                                    "request; make a new request on this machine.");
        goto done;
    }
    status = check_response_names(client, fields, pending, installation);
    if (status != LC_OK)
        goto done;
    status = trusted_keys(client, &keys, &owned);
    if (status != LC_OK)
        goto done;
    if (keys->count == 0) {
        status = client_fail(client, LC_ERR_NO_SIGNING_KEYS, "no_signing_keys", NULL,
                             "No signing keys to verify the response with: give the JWKS "
                             "shipped with the product (--jwks FILE).");
        goto done;
    }
    jws_error error;
    if (!jws_verify(keys, json_any_str(fields, "certificate"), false, &certificate, &error)) {
        if (error.reason == NULL) {
            status = client_fail_oom(client);
            goto done;
        }
        cJSON *details = cJSON_CreateObject();
        if (details != NULL)
            cJSON_AddStringToObject(details, "reason", error.reason);
        status = client_fail(client, LC_ERR_UNTRUSTED_RESPONSE, "invalid_certificate", details,
                             "The response's certificate does not verify against the signing "
                             "keys this program trusts (%s); it was not issued by the license "
                             "portal for this product. Ask the portal for a new response.",
                             error.message);
        goto done;
    }
    const char *code;
    status = identity_problem(client, certificate.claims, &code, &problem);
    if (status != LC_OK)
        goto done;
    const char *cert_license = json_any_str(certificate.claims, "license_id");
    if (code == NULL &&
        (cert_license == NULL || strcmp(cert_license, json_any_str(fields, "license_id")) != 0)) {
        code = LC_MALFORMED;
        problem = strdup("The certificate is for another license than the response.");
    }
    if (code != NULL) {
        char lowered[32];
        size_t i = 0;
        for (; code[i] != '\0' && i < sizeof lowered - 1; i++)
            lowered[i] = (char)tolower((unsigned char)code[i]);
        lowered[i] = '\0';
        char *message = problem ? format_text("%s This response answers another request; make a "
                                              "new request on this machine.",
                                              problem)
                                : NULL;
        status = message ? mismatch(client, lowered, NULL, message) : client_fail_oom(client);
        free(message);
        goto done;
    }
    /* the outer file's nonce is not signed: an older genuine certificate for this installation
     * could be rewrapped with the pending nonce */
    if (!same_secret(json_any_str(certificate.claims, "nonce"), json_any_str(pending, "nonce"))) {
        status = mismatch(client, "nonce", NULL,
                          "The response's certificate is not the answer to this request (it was "
                          "issued for another or an older request); make a new request on this "
                          "machine.");
        goto done;
    }
    now_text = iso_time(client_now(client));
    const char *cert_machine = json_str(certificate.claims, "machine_name");
    const char *machine = cert_machine ? cert_machine : json_str(pending, "machine_name");
    activation = cJSON_CreateObject();
    if (now_text == NULL || activation == NULL ||
        !json_set(activation, "version", cJSON_CreateNumber(1)) ||
        !json_set_str(activation, "license_id", json_any_str(fields, "license_id")) ||
        !json_set_str(activation, "installation_id", installation) ||
        !json_set_str(activation, "machine_name", machine) ||
        !json_set_str(activation, "certificate", certificate.token) ||
        !json_set_str(activation, "activated_at", now_text) ||
        !json_set_str(activation, "source", "offline") ||
        !json_set_str(activation, "request_nonce", nonce) ||
        !json_set_str(activation, "deactivation_secret",
                      json_any_str(fields, "deactivation_secret")) ||
        (client->server != NULL && !json_set_str(activation, "server", client->server))) {
        status = client_fail_oom(client);
        goto done;
    }
    /* certificate and secret in one atomic write: never one without the other */
    status = store_write(client, ACTIVATION_FILE, activation);
    if (status == LC_OK)
        status = store_remove(client, PENDING_FILE);
    if (status == LC_OK)
        status = store_remove(client, PROOF_FILE);
    if (status != LC_OK)
        goto done;
    /* no online check happened: the grace period starts at the next one (best effort: the
     * activation is stored, and an offline activation has no grace period to run out) */
    state_reset(client);
    client_clear_error(client);
validated:
    if (out != NULL)
        status = lc_validate(client, LC_OFFLINE, out);
done:
    cJSON_Delete(fields);
    cJSON_Delete(pending);
    cJSON_Delete(installed);
    cJSON_Delete(activation);
    if (owned)
        keyset_free(keys);
    jws_token_clear(&certificate);
    free(problem);
    free(now_text);
    return status;
}

/* Write a file for the user to carry (atomically: a half-written proof helps nobody). */
static lc_status write_out(lc_client *client, const char *path, const char *text)
{
    if (atomic_write(path, text, strlen(text), 0600) == 0)
        return LC_OK;
    return client_fail(client, LC_ERR_STORAGE, "cannot_write_file", NULL,
                       "Cannot write %s: %s; nothing was deleted, try another place.", path,
                       strerror(errno));
}

lc_status lc_deactivate_offline(lc_client *client, const char *out_path, char **proof_text)
{
    if (client == NULL)
        return LC_ERR_USAGE;
    client_clear_error(client);
    if (proof_text != NULL)
        *proof_text = NULL;
    cJSON *activation, *kept = NULL, *proof = NULL, *record = NULL;
    char *text = NULL, *when = NULL;
    lc_status status = store_read(client, ACTIVATION_FILE, &activation);
    if (status != LC_OK)
        return status;
    if (activation == NULL) {
        /* deactivated already: the same proof again, so a lost file can be written anew */
        status = store_read(client, PROOF_FILE, &kept);
        const char *kept_text = json_any_str(kept, "text");
        if (status == LC_OK && kept_text == NULL)
            status = client_fail(client, LC_ERR_NOT_ACTIVATED, "not_activated", NULL,
                                 "This installation is not activated.");
        if (status == LC_OK && out_path != NULL)
            status = write_out(client, out_path, kept_text);
        if (status == LC_OK && proof_text != NULL &&
            (*proof_text = strdup(kept_text)) == NULL)
            status = client_fail_oom(client);
        cJSON_Delete(kept);
        return status;
    }
    const char *secret = json_str(activation, "deactivation_secret");
    if (secret == NULL) {
        cJSON_Delete(activation);
        return client_fail(client, LC_ERR_NOT_OFFLINE_ACTIVATION, "not_offline_activation", NULL,
                           "This installation was activated online; release its seat with "
                           "`license-client deactivate` (online) instead.");
    }
    const char *license = json_str(activation, "license_id");
    const char *installation = json_str(activation, "installation_id");
    if (installation == NULL && (status = client_installation(client, &installation)) != LC_OK)
        goto done;
    when = iso_time_offset(client_now(client));
    proof = cJSON_CreateObject();
    if (when == NULL || proof == NULL || !json_set_str(proof, "type", "deactivation_proof") ||
        !json_set(proof, "version", cJSON_CreateNumber(1)) ||
        !json_set_str(proof, "license_id", license ? license : "") ||
        !json_set_str(proof, "installation_id", installation) ||
        !json_set_str(proof, "deactivated_at", when) || !json_set_str(proof, "secret", secret) ||
        (text = json_print_indented(proof, false)) == NULL) {
        status = client_fail_oom(client);
        goto done;
    }
    /* the proof is written out before the certificate is deleted: a failed write loses nothing */
    if (out_path != NULL && (status = write_out(client, out_path, text)) != LC_OK)
        goto done;
    record = cJSON_CreateObject();
    if (record == NULL || !json_set_str(record, "license_id", license ? license : "") ||
        !json_set_str(record, "text", text)) {
        status = client_fail_oom(client);
        goto done;
    }
    status = store_write(client, PROOF_FILE, record);
    if (status == LC_OK)
        status = store_remove(client, ACTIVATION_FILE);
    if (status != LC_OK)
        goto done;
    state_reset(client); /* best effort: the proof is written, the activation gone */
    client_clear_error(client);
    if (proof_text != NULL) {
        *proof_text = text;
        text = NULL;
    }
done:
    cJSON_Delete(activation);
    cJSON_Delete(proof);
    cJSON_Delete(record);
    free(text);
    free(when);
    return status;
}
