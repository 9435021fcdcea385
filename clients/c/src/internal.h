/* What the library's modules share: the handle, the last error, and small helpers. */
#ifndef LC_INTERNAL_H
#define LC_INTERNAL_H

#include <cjson/cJSON.h>
#include <openssl/evp.h>
#include <stdarg.h>

#include "license_client.h"

#define ACTIVATION_FILE "activation.json"
#define KEYS_FILE "keys.json"
#define STATE_FILE "state.json"
#define LEASE_FILE "lease.json"
#define PENDING_FILE "offline-request.json"
#define PROOF_FILE "deactivation-proof.json"
#define MACHINE_ID_FILE "machine-id"

/* -- base64url (b64.c) ----------------------------------------------------------------- */

/* Decodes unpadded base64url; NULL for any other character or an impossible length. */
unsigned char *b64url_decode(const char *text, size_t length, size_t *out_length);
char *b64url_encode(const unsigned char *data, size_t length);
/* A fresh random url-safe text of `bytes` random bytes (Python: secrets.token_urlsafe). */
char *random_urlsafe(size_t bytes);
/* A random number in [0, 1]: the jitter of retry delays. */
double random_fraction(void);

/* -- times (times.c) ------------------------------------------------------------------- */

/* An ISO 8601 time with a zone ("Z" or an offset), in Unix seconds; false without a zone. */
bool parse_time(const char *text, int64_t *out);
/* "2026-06-01T12:00:00Z" (the data folder's format); NULL for LC_NO_TIME. */
char *iso_time(int64_t moment);
/* "2026-06-01T12:00:00+00:00" (the offline files' format, the server's). */
char *iso_time_offset(int64_t moment);
/* Seconds on a clock that only goes forward: how long a lease lasts here. */
double monotonic_seconds(void);

/* -- JSON helpers (json.c) ------------------------------------------------------------- */

const char *json_str(const cJSON *object, const char *name); /* a non-empty string, else NULL */
const char *json_any_str(const cJSON *object, const char *name); /* any string, else NULL */
cJSON *json_obj(const cJSON *object, const char *name);          /* an object member, else NULL */
bool json_is_true(const cJSON *object, const char *name);
/* Strict UTF-8 (what Python's decode("utf-8") accepts). */
bool utf8_valid(const char *data, size_t length);
/* Parses a whole JSON text; NULL when it is not JSON or not UTF-8. */
cJSON *json_parse(const char *data, size_t length);
/* Sets (replacing) a member; NULL `value` stores JSON null. false when out of memory. */
bool json_set(cJSON *object, const char *name, cJSON *value);
bool json_set_str(cJSON *object, const char *name, const char *value);
/* Indented, keys sorted, one trailing newline (the Python kit's data files). */
char *json_print_sorted(cJSON *document);
/* Feature codes of a `features` claim: codes or {code} objects, sorted, unique. */
bool feature_codes(const cJSON *value, char ***out, size_t *count);
void free_strings(char **strings, size_t count);
char *dup_or_null(const char *text);
char *format_text(const char *format, ...) __attribute__((format(printf, 1, 2)));

/* -- JWS (jws.c) ----------------------------------------------------------------------- */

#define JWS_MALFORMED "MALFORMED"
#define JWS_UNSUPPORTED_ALGORITHM "UNSUPPORTED_ALGORITHM"
#define JWS_UNKNOWN_KEY "UNKNOWN_KEY"
#define JWS_BAD_SIGNATURE "BAD_SIGNATURE"

typedef struct jws_error {
    const char *reason; /* one of the JWS_* codes, or NULL when out of memory */
    char message[256];
} jws_error;

typedef struct jws_token {
    char *token; /* as given, whitespace stripped */
    cJSON *header;
    cJSON *claims;
    unsigned char signature[64];
    size_t signing_length; /* header.payload is token[0 .. signing_length) */
} jws_token;

typedef struct keyset {
    size_t count;
    char **kids;
    EVP_PKEY **keys;
    cJSON *document; /* the JWKS as read */
} keyset;

/* The usable Ed25519 keys of a JWKS (other keys skipped); false: not a JWKS at all. */
bool keyset_from_text(const char *text, size_t length, keyset **out, jws_error *error);
bool keyset_from_json(const cJSON *document, keyset **out, jws_error *error);
void keyset_free(keyset *keys);
bool keyset_has(const keyset *keys, const char *kid);
/* Header and claims of a compact JWS, signature unchecked. */
bool jws_parse(const char *token, jws_token *out, jws_error *error);
/* A certificate (answer false) or a signed validation answer (true) signed by `keys`. */
bool jws_verify(const keyset *keys, const char *token, bool answer, jws_token *out,
                jws_error *error);
void jws_token_clear(jws_token *token);
/* The product code of a certificate: a string claim or an object's `code`. */
const char *claims_product(const cJSON *claims);
/* A NumericDate claim; false when missing or not a number. */
bool claims_time(const cJSON *claims, const char *name, int64_t *out);
bool is_lease_certificate(const cJSON *claims);

/* -- the handle ------------------------------------------------------------------------ */

typedef struct keeper {
    bool active;
    char *state; /* "live", "retrying" or "lost" */
    char *reason;
    char *error_code;
    char *error_message;
    char *password;
    char *machine_name;
    char *token;
    lc_lease *lease;
    int attempt;
    double deadline; /* monotonic: when the lease ends here */
    int64_t last_heartbeat_at;
    int64_t next_at; /* wall clock: when to call lc_heartbeat() next */
} keeper;

struct lc_client {
    char *server;
    char *product;
    char *name_space;
    char *data_dir_option;
    char *installation_option;
    keyset *pinned;
    long timeout_ms;
    int retries;
    int64_t grace_period;
    int64_t clock_tolerance;
    bool remember_password;
    lc_clock_fn clock;
    void *clock_data;

    char *data_dir;        /* resolved at first use */
    char *installation_id; /* derived at first use */
    int64_t last_seen_mem; /* the latest time seen by this handle (clock rollback) */
    int lease_lock_fd;
    int lease_lock_depth;
    keeper keeper;
    /* the nonce of every online validation, for tests that replay a signed answer; NULL:
     * a fresh random one each time */
    const char *fixed_nonce;

    char *error_message;
    char *error_code;
    char *error_details;
    int error_http_status;
};

int64_t client_now(lc_client *client);
/* Records the error on the handle and returns `status`. `details` (taken over) may be NULL. */
lc_status client_fail(lc_client *client, lc_status status, const char *code, cJSON *details,
                      const char *format, ...) __attribute__((format(printf, 5, 6)));
lc_status client_fail_oom(lc_client *client);
void client_clear_error(lc_client *client);
/* The data folder, resolved once. */
lc_status client_folder(lc_client *client, const char **out);

/* -- the data folder (store.c) --------------------------------------------------------- */

/* A JSON object document of the data folder; *out NULL when missing or damaged. */
lc_status store_read(lc_client *client, const char *name, cJSON **out);
lc_status store_write(lc_client *client, const char *name, cJSON *document);
lc_status store_remove(lc_client *client, const char *name);
lc_status store_ensure_folder(lc_client *client);
/* Replaces `path` with `data`: temp file in the same folder, fsync, rename, fsync folder;
 * -1 with errno when any step fails (after a failed folder fsync the new file is in place,
 * but a crash may still bring back the old one). */
int atomic_write(const char *path, const char *data, size_t length, int mode);
/* Exclusive across processes (flock on .<name>.lock); re-entrant on one handle. */
void store_lock(lc_client *client);
void store_unlock(lc_client *client);
char *path_join(const char *folder, const char *name);
/* A file's text (at most `limit` bytes + 1 read); NULL with errno set. */
char *read_text_file(const char *path, size_t limit, size_t *length);

/* -- HTTP (http.c) --------------------------------------------------------------------- */

typedef struct api {
    char *base_url;
    long timeout_ms;
    int retries;
} api;

/* An api for the configured server, else `stored` (the one an activation or lease kept). */
lc_status api_open(lc_client *client, const char *stored, api *out);
void api_close(api *api);
/* The decoded JSON answer of a 2xx (*answer NULL for an empty one), else the error on the
 * handle: the error envelope's code mapped to an lc_status. */
lc_status api_call(lc_client *client, const api *api, const char *method, const char *path,
                   const cJSON *payload, const char *bearer, cJSON **answer);
/* The seat holders an error's details name, for a person: "CAD-WS-01 (until 2030-01-15
 * 09:15 UTC), LAPTOP-3 (borrowed until ...)"; "" when none. */
char *describe_machines(const cJSON *details);
/* state.json's `server`: the one this installation was last activated with; NULL if none. */
char *state_server(lc_client *client);
/* Whether an error of an online check says nothing about the license (fall back offline). */
bool is_fallback_error(lc_status status);

/* -- installation ID (installation.c) -------------------------------------------------- */

lc_status derive_installation_id(lc_client *client, char **out);
/* SHA-256("license-client/v1\0" + namespace + "\0" + identifier) in hex. */
char *hash_installation_id(const char *name_space, const char *identifier);

/* -- the handle (client.c) ------------------------------------------------------------- */

lc_status client_installation(lc_client *client, const char **out);

/* -- keys (keys.c) --------------------------------------------------------------------- */

/* A JWKS for verifying: the pinned one, else keys.json's (an empty set when none). */
lc_status trusted_keys(lc_client *client, keyset **out, bool *owned);
lc_status fetch_keys(lc_client *client, const api *api, keyset **out);
/* A certificate the server just sent, verified (a rotated key fetched once) and issued to
 * this installation. */
lc_status verify_new_certificate(lc_client *client, const api *api, const keyset *keys,
                                 const char *token, jws_token *out);

/* -- state.json (state.c) -------------------------------------------------------------- */

/* state.json's document; an empty one when there is none. */
lc_status read_state(lc_client *client, cJSON **out);
/* Drop the last online answer's features (and the unsigned list older kits kept). */
void state_forget_answer(cJSON *state);
/* After the activation changed or went: no verdict, no online check (the grace period starts
 * at the next one), no answer; the server and machine name stay. */
lc_status state_reset(lc_client *client);
/* A time member of a document; LC_NO_TIME when missing or not a time with a zone. */
int64_t state_time(const cJSON *document, const char *name);
/* Sets a time member ("...Z"; null for LC_NO_TIME); false when out of memory. */
bool set_time(cJSON *object, const char *name, int64_t moment);
/* The latest time seen: state.json's, or this handle's when later. */
int64_t last_seen(lc_client *client, const cJSON *state);
/* Remember `now` as seen, writing it when it moved on enough; `reset` sets it (the caller
 * writes the state) after the server vouched for the license. */
void set_last_seen(lc_client *client, cJSON *state, int64_t now, bool reset);

/* -- validation (validate.c) ----------------------------------------------------------- */

lc_validation *validation_new(void);
lc_status validate_offline(lc_client *client, int64_t now, lc_validation **out);
/* `validation` with another reason (taken over), and code (NULL: kept), validity and grace. */
lc_status amend(lc_client *client, lc_validation *validation, const char *code, char *reason,
                bool valid, int64_t grace_until);
/* " until 2027-05-01T12:00:00Z", or " with no end (perpetual)". */
char *until_words(int64_t expires);

/* -- activation (activation.c) --------------------------------------------------------- */

/* After a VALID online check: fresh keys when stale, a fresh certificate when the license's
 * expiry changed (extended or renewed). Best effort: errors are ignored. */
void refresh(lc_client *client, const api *api, const cJSON *activation, const cJSON *claims,
             bool server_has_expiry, int64_t server_expiry);
/* Machine, product and a readable expiry: *code NULL when the certificate is this
 * installation's, else the verdict and its reason (to free). */
lc_status identity_problem(lc_client *client, const cJSON *claims, const char **code,
                           char **reason);
/* The server's verdict from `signed_answer`, verified like a certificate (pinned or cached
 * keys; `api` NULL: no key is fetched), for this request (`nonce`), fresh (`iat` within the
 * clock tolerance) and about this certificate; LC_ERR_PROTOCOL otherwise, which is as good
 * as no answer. */
lc_status check_signed_answer(lc_client *client, const api *api, const cJSON *answer,
                              const char *nonce, const cJSON *certificate, int64_t now,
                              jws_token *out);
char *host_name(void);
/* Whether two product codes name the same product: stripped, compared without case. */
bool same_product(const char *a, const char *b);
/* Python's json.dumps(indent=2): two-space indents, ", " and ": " separators; `sorted` sorts
 * the keys. One trailing newline. */
char *json_print_indented(cJSON *document, bool sorted);

/* -- offline.c ------------------------------------------------------------------------- */

bool same_secret(const char *a, const char *b);

/* -- leases.c -------------------------------------------------------------------------- */

/* The lease stored in lease.json (certificate unverified); NULL when none. */
lc_lease *held_lease(const cJSON *document, char **token);
void keeper_clear(keeper *keeper);
/* Check in a lease a heartbeat keeps, one try, errors ignored (lc_client_free). */
void leases_at_exit(lc_client *client);

/* -- results.c ------------------------------------------------------------------------- */

lc_lease *lease_copy(const lc_lease *lease);

#endif
