/*
 * license_client.h: the License Portal client library for C and C++ (C11, stable C ABI).
 *
 * Activate, deactivate and validate this installation's license, with the same behaviour,
 * data folder and installation ID as the Python kit (clients/python): activate with either
 * kit and the other one validates the same data folder.
 *
 *     lc_client *client = NULL;
 *     lc_client_new(&client);
 *     lc_client_set_server(client, "https://licenses.example.com");
 *     lc_client_set_product(client, "cadpro");
 *     if (lc_activate(client, "LIC-7Q2M-9XKD", "activation password", NULL, NULL) != LC_OK)
 *         fprintf(stderr, "%s\n", lc_client_error_message(client));
 *     lc_validation *verdict = NULL;
 *     lc_validate(client, LC_ONLINE, &verdict);   // offline within the grace period
 *     if (!verdict->valid) ask_for_a_license(verdict->reason);
 *     lc_validation_free(verdict);
 *     lc_client_free(client);
 *
 * Conventions:
 * - Every operation returns an lc_status (LC_OK = 0). On failure the handle keeps the last
 *   error: lc_client_error_message() in words, lc_client_error_code() as the API's
 *   snake_case code (the Python kit's `LicenseError.code`), lc_client_error_details() as a
 *   JSON object text. An invalid license is not a failure: lc_validate() returns LC_OK
 *   and a verdict whose `valid` is false.
 * - Results are allocated by the library and owned by the caller: free each with its
 *   lc_*_free() (NULL is accepted). Strings in them are UTF-8, NUL-terminated, NULL when
 *   absent. Times are Unix seconds (UTC); LC_NO_TIME (0) means none (a perpetual license
 *   has no expires_at).
 * - Structs only ever grow at their end; the library allocates them, so a program built
 *   against an older header keeps working with a newer library.
 * - Threads: no global state but libcurl's, which the library initialises once, thread-safely
 *   (curl_global_init under pthread_once, at the first lc_client_new; never cleaned up). A
 *   handle is used by one thread at a time (serialise calls on a shared handle yourself);
 *   separate handles are independent. The library starts no thread: a floating license's
 *   lease is kept by calling lc_heartbeat() (see there). Several processes may share a data
 *   folder: every file is replaced atomically and lease.json is updated under a lock.
 * - Platforms: Linux and other POSIX systems. The machine identifiers the Python kit reads on
 *   macOS (IOPlatformUUID) and Windows (MachineGuid) are not read: without /etc/machine-id
 *   the library keeps a random identifier in the data folder (machine-id), as the Python
 *   kit does where it finds none.
 */
#ifndef LICENSE_CLIENT_H
#define LICENSE_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define LC_API __attribute__((visibility("default")))
#else
#define LC_API
#endif

#define LC_VERSION "0.1.0"
#define LC_NO_TIME ((int64_t)0)

/* What an operation ended with. The comment gives lc_client_error_code()'s usual value. */
typedef enum lc_status {
    LC_OK = 0,
    LC_ERR_USAGE = 1,               /* usage_error, bad_license_id, product_required,
                                       password_required, license_id_required, no_server,
                                       bad_url: the caller's arguments or options */
    LC_ERR_NO_MEMORY = 2,           /* out_of_memory */
    LC_ERR_INVALID_CREDENTIALS = 3, /* invalid_credentials: unknown license or wrong password */
    LC_ERR_NO_SEATS = 4,            /* no_seats_available: details name the seat holders */
    LC_ERR_LICENSE_EXPIRED = 5,     /* license_expired */
    LC_ERR_LICENSE_SUSPENDED = 6,   /* license_suspended */
    LC_ERR_WRONG_PRODUCT = 7,       /* wrong_product: the license is for another product */
    LC_ERR_TOO_MANY_ATTEMPTS = 8,   /* too_many_attempts: details.retry_after */
    LC_ERR_VALIDATION = 9,          /* validation_error: the server refused a field */
    LC_ERR_NODE_LOCKED = 10,        /* node_locked_license: activate instead of checkout */
    LC_ERR_FLOATING = 11,           /* floating_license: check out instead of activate */
    LC_ERR_BORROW_NOT_ALLOWED = 12, /* borrow_not_allowed: details.max_borrow_days, latest */
    LC_ERR_LEASE_EXPIRED = 13,      /* lease_expired: details.reason expired|revoked|... */
    LC_ERR_INVALID_LEASE_TOKEN = 14,/* invalid_lease_token */
    LC_ERR_SERVICE_UNAVAILABLE = 15,/* service_unavailable: 502/503/504 after the retries */
    LC_ERR_NETWORK = 16,            /* network_error: no HTTP answer (DNS, refused, timeout) */
    LC_ERR_PROTOCOL = 17,           /* unexpected_response: not this API's answer */
    LC_ERR_INVALID_CERTIFICATE = 18,/* invalid_certificate: the server's certificate does
                                       not verify against the trusted keys */
    LC_ERR_NOT_ACTIVATED = 19,      /* not_activated */
    LC_ERR_NOT_CHECKED_OUT = 20,    /* not_checked_out: no lease held */
    LC_ERR_STORAGE = 21,            /* storage_error, cannot_write_file */
    LC_ERR_INVALID_RESPONSE_FILE = 22, /* invalid_response: a malformed response file */
    LC_ERR_RESPONSE_MISMATCH = 23,  /* response_mismatch: answers another request */
    LC_ERR_UNTRUSTED_RESPONSE = 24, /* invalid_certificate: the response file's certificate
                                       does not verify */
    LC_ERR_NOT_OFFLINE_ACTIVATION = 25, /* not_offline_activation */
    LC_ERR_NO_SIGNING_KEYS = 26,    /* no_signing_keys: pin the JWKS or validate online once */
    LC_ERR_SERVER = 27              /* any other error the server answered: see the code */
} lc_status;

/* The enum constant's name without "LC_", e.g. "ERR_NO_SEATS"; "UNKNOWN" for others. */
LC_API const char *lc_status_name(lc_status status);

/* The verdict codes (lc_validation.code), the Python kit's strings. */
#define LC_VALID "VALID"
#define LC_EXPIRED "EXPIRED"
#define LC_SUSPENDED "SUSPENDED"
#define LC_DEACTIVATED "DEACTIVATED"
#define LC_BAD_SIGNATURE "BAD_SIGNATURE"
#define LC_LEASE_EXPIRED "LEASE_EXPIRED"
#define LC_NOT_ACTIVATED "NOT_ACTIVATED"
#define LC_MALFORMED "MALFORMED"
#define LC_UNSUPPORTED_ALGORITHM "UNSUPPORTED_ALGORITHM"
#define LC_UNKNOWN_KEY "UNKNOWN_KEY"
#define LC_WRONG_MACHINE "WRONG_MACHINE"
#define LC_WRONG_PRODUCT "WRONG_PRODUCT"
#define LC_CLOCK_ROLLBACK "CLOCK_ROLLBACK"
#define LC_GRACE_EXPIRED "GRACE_EXPIRED"

typedef enum lc_mode {
    LC_OFFLINE = 0, /* the stored certificate alone, no network */
    LC_ONLINE = 1   /* the server's verdict; the certificate within the grace period if the
                       server cannot be reached */
} lc_mode;

/* The answer to "may the product run?" (Python: Validation). */
typedef struct lc_validation {
    bool valid;
    char *code;            /* LC_VALID or why not */
    char *reason;          /* the same in words, for a log or a dialog */
    bool online;           /* the server gave the verdict (else the certificate alone) */
    int64_t checked_at;
    char *license_id;
    char *installation_id;
    char *machine_name;
    char *product;
    char *customer_id;
    int64_t expires_at;    /* LC_NO_TIME: perpetual */
    int64_t grace_until;   /* set when the server was unreachable: valid only until then */
    char **features;       /* the feature codes the license unlocks; none unless valid */
    size_t feature_count;
} lc_validation;

/* One seat of a floating license held by this installation (Python: Lease; no token). */
typedef struct lc_lease {
    char *lease_id;
    char *license_id;
    char *installation_id;
    char *machine_name;
    char *certificate;         /* the signed lease certificate (compact JWS) */
    int64_t issued_at;
    int64_t expires_at;
    bool borrowed;
    char *server;
    int64_t heartbeat_interval; /* seconds: a third of the lease period */
} lc_lease;

/* What this installation holds and its validation (Python: Status). */
typedef struct lc_status_report {
    bool activated;
    char *installation_id;
    char *data_dir;
    lc_validation *validation;
    char *server;
    char *license_id;
    char *machine_name;
    char *product;
    char *customer_id;
    int64_t activated_at;
    int64_t expires_at;
    int64_t last_online_check;
    int64_t grace_until;
    char **features;
    size_t feature_count;
    char *source;              /* "online" or "offline": how the certificate was obtained */
    lc_lease *lease;           /* a floating license's stored lease instead of an activation */
} lc_status_report;

/* Where the lease stands (Python: LeaseStatus); no network. */
typedef struct lc_lease_status {
    char *state;               /* "none", "live", "retrying", "borrowed" or "lost" */
    char *reason;
    lc_lease *lease;           /* NULL when none is held */
    bool held;                 /* the product may use the seat now */
    char *error_code;          /* the last heartbeat error, else NULL */
    char *error_message;
    int64_t last_heartbeat_at;
    int64_t next_heartbeat_at; /* when to call lc_heartbeat() next */
} lc_lease_status;

/* Returns the current time in Unix seconds; for tests (lc_client_set_clock). */
typedef int64_t (*lc_clock_fn)(void *user_data);

typedef struct lc_client lc_client;

/* -- the handle ------------------------------------------------------------------------ */

/* A client with the Python kit's defaults: no server (the one stored at activation is used),
 * no product, the default data folder, timeout 10 s, 3 retries, grace period 7 days, clock
 * tolerance 1 hour, keys fetched from the server, the password remembered. */
LC_API lc_status lc_client_new(lc_client **out);
/* Frees the handle; a lease it keeps by heartbeats is checked in first (one try), as the
 * Python kit does at exit. A borrowed lease stays borrowed. */
LC_API void lc_client_free(lc_client *client);

/* The last error of this handle; "" / "{}" after a success. Valid until the next call. */
LC_API const char *lc_client_error_message(const lc_client *client);
LC_API const char *lc_client_error_code(const lc_client *client);
LC_API const char *lc_client_error_details(const lc_client *client); /* JSON object text */
LC_API int lc_client_error_http_status(const lc_client *client);     /* 0 when none */

/* -- options (set them before the first operation) ------------------------------------- */

/* The portal's URL without /api/v1; NULL: the one stored at activation. */
LC_API lc_status lc_client_set_server(lc_client *client, const char *url);
/* The product code: certificates for others are WRONG_PRODUCT, activation and checkout send
 * it (the server refuses another product's license before taking a seat), and it is the
 * default namespace of the installation ID and data folder. */
LC_API lc_status lc_client_set_product(lc_client *client, const char *product);
/* What the installation ID is hashed with (default: the product code, else "default"). */
LC_API lc_status lc_client_set_namespace(lc_client *client, const char *name_space);
/* Default: $LICENSE_CLIENT_DATA_DIR, else $XDG_DATA_HOME or ~/.local/share, then
 * license-client/<namespace>. */
LC_API lc_status lc_client_set_data_dir(lc_client *client, const char *path);
/* Used as it is, not hashed (default: $LICENSE_CLIENT_INSTALLATION_ID, else derived);
 * 1-128 printable ASCII characters, no spaces. */
LC_API lc_status lc_client_set_installation_id(lc_client *client, const char *installation_id);
/* A pinned JWKS: only these keys are trusted and none is ever fetched. */
LC_API lc_status lc_client_set_jwks_file(lc_client *client, const char *path);
LC_API lc_status lc_client_set_jwks_text(lc_client *client, const char *jwks_json);
LC_API lc_status lc_client_set_timeout_ms(lc_client *client, long timeout_ms);
/* Retries of a 502/503/504 or network error (with exponential backoff); 4xx never. */
LC_API lc_status lc_client_set_retries(lc_client *client, int retries);
/* Both from 0 to 100 years (LC_ERR_USAGE otherwise). */
LC_API lc_status lc_client_set_grace_period(lc_client *client, int64_t seconds);
LC_API lc_status lc_client_set_clock_tolerance(lc_client *client, int64_t seconds);
/* Keep the password in activation.json / lease.json, for deactivate and refreshes. */
LC_API lc_status lc_client_set_remember_password(lc_client *client, bool remember);
LC_API lc_status lc_client_set_clock(lc_client *client, lc_clock_fn clock, void *user_data);

/* -- identity -------------------------------------------------------------------------- */

/* This machine's installation ID (the Python kit's for the same namespace), owned by the
 * handle: valid until an option is set or the handle is freed. Fails when the installation
 * ID option is malformed, or no identifier exists and the data folder cannot keep one. */
LC_API lc_status lc_installation_id(lc_client *client, const char **out);
/* The data folder in use, owned by the handle like the installation ID. */
LC_API lc_status lc_data_dir(lc_client *client, const char **out);

/* -- node-locked activation ------------------------------------------------------------ */

/* Activate this installation and store its certificate; `out` (may be NULL) gets its offline
 * validation. `machine_name` NULL: the previous activation's, else the host name. Idempotent
 * on the server (no second seat). */
LC_API lc_status lc_activate(lc_client *client, const char *license_id, const char *password,
                             const char *machine_name, lc_validation **out);
/* Release the seat on the server and forget the activation; `password` NULL: the stored one.
 * Already gone on the server (deactivated in the portal): just forgotten here. */
LC_API lc_status lc_deactivate(lc_client *client, const char *password);
/* Drop the stored activation without asking the server (the seat stays taken). */
LC_API lc_status lc_forget(lc_client *client);

/* -- validation ------------------------------------------------------------------------ */

/* Whether this installation may run; LC_OK for any verdict (an unreachable server is a
 * verdict too: the certificate within the grace period). An error only for LC_ERR_USAGE (a
 * bad installation ID option), LC_ERR_STORAGE (the data folder cannot be read) or
 * LC_ERR_NO_MEMORY. */
LC_API lc_status lc_validate(lc_client *client, lc_mode mode, lc_validation **out);
LC_API lc_status lc_status_get(lc_client *client, lc_mode mode, lc_status_report **out);
/* Whether the license unlocks the feature (module) `code`, offline. */
LC_API lc_status lc_has_feature(lc_client *client, const char *code, bool *out);

/* -- offline activation (air-gapped machines) ------------------------------------------ */

/* The text of an activation request file (JSON); remembered as pending. Needs a product.
 * `machine_name` NULL: the host name. Free the text with lc_free(). */
LC_API lc_status lc_offline_request(lc_client *client, const char *license_id,
                                    const char *machine_name, char **request_text);
/* Install the portal's response file's text (`length` bytes); `out` (may be NULL) gets the
 * offline validation. Only the response to the pending request, verified against the pinned
 * or cached keys, is accepted. */
LC_API lc_status lc_install_offline_response(lc_client *client, const char *text,
                                             size_t length, lc_validation **out);
/* Delete the offline certificate and give the deactivation proof's text (free it with
 * lc_free()); with `out_path`, the proof is written there first (if that fails nothing is
 * deleted). Once deactivated, the same proof again. */
LC_API lc_status lc_deactivate_offline(lc_client *client, const char *out_path,
                                       char **proof_text);

/* -- floating licenses ----------------------------------------------------------------- */

/* Take a seat (idempotent: the lease held comes back). `license_id`/`password` NULL: the
 * ones remembered in lease.json. Keep the seat by calling lc_heartbeat() every
 * lease->heartbeat_interval seconds; lc_checkin() gives it back. */
LC_API lc_status lc_checkout(lc_client *client, const char *license_id, const char *password,
                             const char *machine_name, lc_lease **out);
/* A lease until now + `days` that needs no heartbeat, valid offline in any later process. */
LC_API lc_status lc_borrow(lc_client *client, double days, const char *license_id,
                           const char *password, const char *machine_name, lc_lease **out);
/* One heartbeat: renews the lease, checks out again when it lapsed, adopts the token another
 * process of this installation stored, backs off while the server cannot be reached (state
 * "retrying", until the lease's end); `out` (may be NULL) says where the lease stands
 * afterwards: "lost" means stop the work (out->reason says why). Does nothing when this handle
 * keeps no lease (state "none" or "borrowed"). LC_OK unless out of memory. */
LC_API lc_status lc_heartbeat(lc_client *client, lc_lease_status **out);
/* Give the seat back (a borrowed one too); `out` (may be NULL) gets the lease returned. */
LC_API lc_status lc_checkin(lc_client *client, lc_lease **out);
LC_API lc_status lc_lease_status_get(lc_client *client, lc_lease_status **out);

/* Write a file atomically (temp file, fsync, rename) with `mode` (e.g. 0644 for a request
 * file to carry on a USB stick): a crash leaves the old file or the new one, never half. */
LC_API lc_status lc_write_file(lc_client *client, const char *path, const char *data,
                               size_t length, int mode);

/* -- results --------------------------------------------------------------------------- */

LC_API void lc_validation_free(lc_validation *validation);
LC_API void lc_status_report_free(lc_status_report *report);
LC_API void lc_lease_free(lc_lease *lease);
LC_API void lc_lease_status_free(lc_lease_status *status);
LC_API void lc_free(void *memory);

/* `time` as "2026-06-01T12:00:00Z" into `buffer` (at least 21 bytes); "" for LC_NO_TIME. */
LC_API lc_status lc_format_time(int64_t time, char *buffer, size_t size);
/* The JSON the Python kit prints for the same value (`to_dict()`), to free with lc_free(). */
LC_API lc_status lc_validation_to_json(const lc_validation *validation, char **json);
LC_API lc_status lc_status_report_to_json(const lc_status_report *report, char **json);
LC_API lc_status lc_lease_to_json(const lc_lease *lease, char **json);

#ifdef __cplusplus
}
#endif

#endif
