/* Compact JWS (RFC 7515) with EdDSA / Ed25519 (RFC 8037), the certificate's format, verified
 * with OpenSSL's EVP interface. Anything wrong with a token, however malformed, ends as a
 * jws_error with a reason code, exactly where the Python kit's jws.py says so. */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define MAX_TOKEN_LENGTH 16384 /* a certificate is a few hundred bytes: refuse megabytes */
#define VALIDATION_TYP "license-validation+jwt"

static bool fail(jws_error *error, const char *reason, const char *format, ...)
    __attribute__((format(printf, 3, 4)));

static bool fail(jws_error *error, const char *reason, const char *format, ...)
{
    va_list args;
    va_start(args, format);
    vsnprintf(error->message, sizeof error->message, format, args);
    va_end(args);
    error->reason = reason;
    return false;
}

static bool out_of_memory(jws_error *error)
{
    return fail(error, NULL, "out of memory");
}

static bool is_algorithm(const char *name)
{
    /* RFC 8037 names it "EdDSA"; RFC 9864 adds the fully specified "Ed25519" */
    return name != NULL && (strcmp(name, "EdDSA") == 0 || strcmp(name, "Ed25519") == 0);
}

static EVP_PKEY *ed25519_key(const cJSON *jwk)
{
    if (!cJSON_IsObject(jwk))
        return NULL;
    const char *kty = json_any_str(jwk, "kty");
    const char *crv = json_any_str(jwk, "crv");
    if (kty == NULL || strcmp(kty, "OKP") != 0 || crv == NULL || strcmp(crv, "Ed25519") != 0)
        return NULL;
    /* absent `use` and `alg` mean a signing key; present, they must say so */
    const cJSON *use = cJSON_GetObjectItemCaseSensitive(jwk, "use");
    if (use != NULL && !(cJSON_IsString(use) && strcmp(use->valuestring, "sig") == 0))
        return NULL;
    const cJSON *alg = cJSON_GetObjectItemCaseSensitive(jwk, "alg");
    if (alg != NULL && !(cJSON_IsString(alg) && is_algorithm(alg->valuestring)))
        return NULL;
    const char *x = json_any_str(jwk, "x");
    if (x == NULL)
        return NULL;
    size_t length;
    unsigned char *raw = b64url_decode(x, strlen(x), &length);
    if (raw == NULL)
        return NULL;
    EVP_PKEY *key = NULL;
    if (length == 32)
        key = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, raw, length);
    free(raw);
    return key;
}

/* A kid as the Python kit keys it: str(jwk.get("kid", "")), so a JWK's numeric kid 7 is
 * named by a token's "7". */
static char *kid_text(const cJSON *jwk)
{
    const cJSON *kid = cJSON_GetObjectItemCaseSensitive(jwk, "kid");
    if (kid == NULL)
        return strdup("");
    if (cJSON_IsString(kid))
        return strdup(kid->valuestring);
    if (cJSON_IsBool(kid))
        return strdup(cJSON_IsTrue(kid) ? "True" : "False");
    if (cJSON_IsNull(kid))
        return strdup("None");
    if (cJSON_IsNumber(kid) && kid->valuedouble == floor(kid->valuedouble) &&
        fabs(kid->valuedouble) < 1e15)
        return format_text("%lld", (long long)kid->valuedouble);
    /* a float, list or object: a text no token's kid is likely to be */
    char *text = cJSON_PrintUnformatted(kid);
    char *copy = text ? strdup(text) : NULL;
    cJSON_free(text);
    return copy;
}

bool keyset_from_json(const cJSON *document, keyset **out, jws_error *error)
{
    *out = NULL;
    const cJSON *list = cJSON_IsObject(document)
                            ? cJSON_GetObjectItemCaseSensitive(document, "keys")
                            : NULL;
    if (!cJSON_IsArray(list))
        return fail(error, JWS_MALFORMED, "the JWKS has no \"keys\" list");
    keyset *keys = calloc(1, sizeof *keys);
    size_t size = (size_t)cJSON_GetArraySize(list);
    if (keys == NULL)
        return out_of_memory(error);
    keys->document = cJSON_Duplicate(document, true);
    keys->kids = calloc(size + 1, sizeof *keys->kids);
    keys->keys = calloc(size + 1, sizeof *keys->keys);
    if (keys->document == NULL || keys->kids == NULL || keys->keys == NULL) {
        keyset_free(keys);
        return out_of_memory(error);
    }
    const cJSON *jwk;
    cJSON_ArrayForEach(jwk, list)
    {
        EVP_PKEY *key = ed25519_key(jwk);
        if (key == NULL)
            continue;
        char *kid = kid_text(jwk);
        if (kid == NULL) {
            EVP_PKEY_free(key);
            keyset_free(keys);
            return out_of_memory(error);
        }
        /* a later key with the same kid replaces the earlier one, as a dict would */
        size_t slot = keys->count;
        for (size_t i = 0; i < keys->count; i++) {
            if (strcmp(keys->kids[i], kid) == 0)
                slot = i;
        }
        if (slot < keys->count) {
            free(keys->kids[slot]);
            EVP_PKEY_free(keys->keys[slot]);
        } else {
            keys->count++;
        }
        keys->kids[slot] = kid;
        keys->keys[slot] = key;
    }
    *out = keys;
    return true;
}

bool keyset_from_text(const char *text, size_t length, keyset **out, jws_error *error)
{
    cJSON *document = json_parse(text, length);
    if (document == NULL) {
        *out = NULL;
        return fail(error, JWS_MALFORMED, "the JWKS is not JSON");
    }
    bool ok = keyset_from_json(document, out, error);
    cJSON_Delete(document);
    return ok;
}

void keyset_free(keyset *keys)
{
    if (keys == NULL)
        return;
    for (size_t i = 0; i < keys->count; i++) {
        free(keys->kids[i]);
        EVP_PKEY_free(keys->keys[i]);
    }
    free(keys->kids);
    free(keys->keys);
    cJSON_Delete(keys->document);
    free(keys);
}

bool keyset_has(const keyset *keys, const char *kid)
{
    if (keys == NULL)
        return false;
    if (kid == NULL)
        return keys->count == 1;
    for (size_t i = 0; i < keys->count; i++) {
        if (strcmp(keys->kids[i], kid) == 0)
            return true;
    }
    return false;
}

static EVP_PKEY *key_for(const keyset *keys, const char *kid)
{
    if (keys == NULL)
        return NULL;
    if (kid == NULL) /* a token without kid is only unambiguous against a set of one key */
        return keys->count == 1 ? keys->keys[0] : NULL;
    for (size_t i = 0; i < keys->count; i++) {
        if (strcmp(keys->kids[i], kid) == 0)
            return keys->keys[i];
    }
    return NULL;
}

static bool json_part(const char *text, size_t length, const char *name, cJSON **out,
                      jws_error *error)
{
    size_t raw_length;
    unsigned char *raw = b64url_decode(text, length, &raw_length);
    if (raw == NULL)
        return fail(error, JWS_MALFORMED, "the %s is not base64url", name);
    cJSON *value = json_parse((const char *)raw, raw_length);
    free(raw);
    if (value == NULL)
        return fail(error, JWS_MALFORMED, "the %s is not JSON", name);
    if (!cJSON_IsObject(value)) {
        cJSON_Delete(value);
        return fail(error, JWS_MALFORMED, "the %s is not a JSON object", name);
    }
    *out = value;
    return true;
}

bool jws_parse(const char *token, jws_token *out, jws_error *error)
{
    memset(out, 0, sizeof *out);
    if (token == NULL)
        return fail(error, JWS_MALFORMED, "the certificate is not a string");
    while (isspace((unsigned char)*token))
        token++;
    size_t length = strlen(token);
    while (length > 0 && isspace((unsigned char)token[length - 1]))
        length--;
    if (length > MAX_TOKEN_LENGTH)
        return fail(error, JWS_MALFORMED, "the certificate is too long");
    const char *first = memchr(token, '.', length);
    const char *second = first ? memchr(first + 1, '.', length - (size_t)(first + 1 - token))
                               : NULL;
    if (first == NULL || second == NULL ||
        memchr(second + 1, '.', length - (size_t)(second + 1 - token)) != NULL)
        return fail(error, JWS_MALFORMED, "a compact JWS has three dot-separated parts");
    out->token = strndup(token, length);
    if (out->token == NULL)
        return out_of_memory(error);
    if (!json_part(token, (size_t)(first - token), "header", &out->header, error) ||
        !json_part(first + 1, (size_t)(second - first - 1), "payload", &out->claims, error)) {
        jws_token_clear(out);
        return false;
    }
    size_t signature_length;
    unsigned char *signature = b64url_decode(second + 1, length - (size_t)(second + 1 - token),
                                             &signature_length);
    if (signature == NULL) {
        jws_token_clear(out);
        return fail(error, JWS_MALFORMED, "the signature is not base64url");
    }
    if (signature_length != 64) {
        free(signature);
        jws_token_clear(out);
        return fail(error, JWS_MALFORMED, "an Ed25519 signature is 64 bytes");
    }
    memcpy(out->signature, signature, 64);
    free(signature);
    out->signing_length = (size_t)(second - token);
    return true;
}

/* The header value as Python's repr() shows it in a message, shortened. */
static void describe(const cJSON *value, char *buffer, size_t size)
{
    if (value == NULL) {
        snprintf(buffer, size, "None");
    } else if (cJSON_IsString(value)) {
        snprintf(buffer, size, "'%.60s'", value->valuestring);
    } else {
        char *text = cJSON_PrintUnformatted(value);
        snprintf(buffer, size, "%.60s", text != NULL ? text : "?");
        cJSON_free(text);
    }
}

bool jws_verify(const keyset *keys, const char *token, bool answer, jws_token *out,
                jws_error *error)
{
    if (!jws_parse(token, out, error))
        return false;
    char shown[80];
    const cJSON *alg = cJSON_GetObjectItemCaseSensitive(out->header, "alg");
    if (!cJSON_IsString(alg) || !is_algorithm(alg->valuestring)) {
        describe(alg, shown, sizeof shown);
        jws_token_clear(out);
        return fail(error, JWS_UNSUPPORTED_ALGORITHM, "algorithm %s is not EdDSA/Ed25519", shown);
    }
    if (cJSON_GetObjectItemCaseSensitive(out->header, "crit") != NULL) {
        jws_token_clear(out);
        return fail(error, JWS_MALFORMED, "critical header extensions are not supported");
    }
    const cJSON *kid = cJSON_GetObjectItemCaseSensitive(out->header, "kid");
    if (kid != NULL && !cJSON_IsString(kid)) {
        jws_token_clear(out);
        return fail(error, JWS_MALFORMED, "the kid header is not a string");
    }
    EVP_PKEY *key = key_for(keys, kid != NULL ? kid->valuestring : NULL);
    if (key == NULL) {
        describe(kid, shown, sizeof shown);
        jws_token_clear(out);
        return fail(error, JWS_UNKNOWN_KEY, "no signing key with kid %s", shown);
    }
    EVP_MD_CTX *context = EVP_MD_CTX_new();
    if (context == NULL) {
        jws_token_clear(out);
        return out_of_memory(error);
    }
    int verified = EVP_DigestVerifyInit(context, NULL, NULL, NULL, key) == 1 &&
                   EVP_DigestVerify(context, out->signature, 64,
                                    (const unsigned char *)out->token, out->signing_length) == 1;
    EVP_MD_CTX_free(context);
    if (!verified) {
        jws_token_clear(out);
        return fail(error, JWS_BAD_SIGNATURE, "the signature does not verify");
    }
    /* neither kind passes for the other: a VALID answer must never unlock as a certificate */
    const char *typ = json_any_str(out->header, "typ");
    bool is_answer = typ != NULL && strcmp(typ, VALIDATION_TYP) == 0;
    if (is_answer != answer) {
        jws_token_clear(out);
        return fail(error, JWS_MALFORMED, "%s",
                    answer ? "the token is not a signed validation answer"
                           : "a validation answer is not a certificate");
    }
    return true;
}

void jws_token_clear(jws_token *token)
{
    free(token->token);
    cJSON_Delete(token->header);
    cJSON_Delete(token->claims);
    memset(token, 0, sizeof *token);
}

const char *claims_product(const cJSON *claims)
{
    const cJSON *product = cJSON_GetObjectItemCaseSensitive(claims, "product");
    if (cJSON_IsObject(product))
        product = cJSON_GetObjectItemCaseSensitive(product, "code");
    return cJSON_IsString(product) ? product->valuestring : NULL;
}

bool claims_time(const cJSON *claims, const char *name, int64_t *out)
{
    const cJSON *value = cJSON_GetObjectItemCaseSensitive(claims, name);
    /* cJSON keeps booleans apart from numbers, as Python's check for bool does */
    if (!cJSON_IsNumber(value) || !isfinite(value->valuedouble) ||
        fabs(value->valuedouble) > 253402300799.0)
        return false;
    *out = (int64_t)floor(value->valuedouble);
    return true;
}

bool is_lease_certificate(const cJSON *claims)
{
    return cJSON_IsString(cJSON_GetObjectItemCaseSensitive(claims, "lease_id"));
}
