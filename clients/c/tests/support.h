/* What the tests share: temporary data folders, an Ed25519 signer standing in for the
 * server's key, and a fake License Portal over real HTTP on 127.0.0.1. */
#ifndef SUPPORT_H
#define SUPPORT_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdint.h>

#include "license_client.h"

/* A fresh empty folder under $TMPDIR; remove it with remove_tree(). */
char *make_temp_folder(void);
void remove_tree(const char *path);
char *read_file_text(const char *path);
void write_file_text(const char *path, const char *text);

/* -- signing --------------------------------------------------------------------------- */

typedef struct signer signer;
signer *signer_new(const char *kid);
void signer_free(signer *signer);
/* {"keys": [the signer's JWK]} */
char *signer_jwks(const signer *signer);
/* A compact JWS of `claims` with header {alg: EdDSA, typ, kid}; `typ` NULL: "JWT". */
char *signer_sign(const signer *signer, const cJSON *claims, const char *typ);

/* -- the fake server ------------------------------------------------------------------- */

typedef struct request {
    char method[16];
    char path[256];
    char authorization[512];
    cJSON *body; /* NULL when none or not JSON */
} request;

typedef struct response {
    int status;
    char *body; /* taken over; NULL: empty */
    const char *extra_header; /* e.g. "Retry-After: 0" */
} response;

typedef response (*handler_fn)(const request *request, void *user);

typedef struct fake_server fake_server;
/* Serves `handler` on 127.0.0.1 (a free port) in a thread until fake_server_stop(). */
fake_server *fake_server_start(handler_fn handler, void *user);
const char *fake_server_url(const fake_server *server);
int fake_server_requests(const fake_server *server);
void fake_server_stop(fake_server *server);
/* A URL where nobody listens. */
char *dead_url(void);

response json_response(int status, cJSON *body); /* takes `body` over */
response error_response(int status, const char *code, const char *message, cJSON *details);

/* -- the fixed clock ------------------------------------------------------------------- */

int64_t fixed_clock(void *moment);

#endif
