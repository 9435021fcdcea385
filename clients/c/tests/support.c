#include "support.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ftw.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "internal.h"

char *make_temp_folder(void)
{
    const char *base = getenv("TMPDIR");
    char *path = malloc(4096);
    snprintf(path, 4096, "%s/lc-test-XXXXXX", base && base[0] ? base : "/tmp");
    if (mkdtemp(path) == NULL) {
        perror("mkdtemp");
        exit(2);
    }
    return path;
}

static int remove_entry(const char *path, const struct stat *info, int flag, struct FTW *walk)
{
    (void)info;
    (void)flag;
    (void)walk;
    return remove(path);
}

void remove_tree(const char *path)
{
    nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

char *read_file_text(const char *path)
{
    FILE *file = fopen(path, "rb");
    if (file == NULL)
        return NULL;
    fseek(file, 0, SEEK_END);
    long size = ftell(file);
    fseek(file, 0, SEEK_SET);
    char *text = malloc((size_t)size + 1);
    size_t used = fread(text, 1, (size_t)size, file);
    text[used] = '\0';
    fclose(file);
    return text;
}

void write_file_text(const char *path, const char *text)
{
    FILE *file = fopen(path, "wb");
    if (file == NULL) {
        perror(path);
        exit(2);
    }
    fputs(text, file);
    fclose(file);
}

/* -- signing --------------------------------------------------------------------------- */

struct signer {
    EVP_PKEY *key;
    char kid[64];
};

signer *signer_new(const char *kid)
{
    signer *signer = calloc(1, sizeof *signer);
    EVP_PKEY_CTX *context = EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, NULL);
    EVP_PKEY_keygen_init(context);
    EVP_PKEY_keygen(context, &signer->key);
    EVP_PKEY_CTX_free(context);
    snprintf(signer->kid, sizeof signer->kid, "%s", kid);
    return signer;
}

void signer_free(signer *signer)
{
    if (signer == NULL)
        return;
    EVP_PKEY_free(signer->key);
    free(signer);
}

char *signer_jwks(const signer *signer)
{
    unsigned char raw[32];
    size_t length = sizeof raw;
    EVP_PKEY_get_raw_public_key(signer->key, raw, &length);
    char *x = b64url_encode(raw, length);
    char *text = malloc(512);
    snprintf(text, 512,
             "{\"keys\": [{\"kty\": \"OKP\", \"crv\": \"Ed25519\", \"kid\": \"%s\", \"x\": "
             "\"%s\", \"alg\": \"EdDSA\", \"use\": \"sig\"}]}",
             signer->kid, x);
    free(x);
    return text;
}

char *signer_sign(const signer *signer, const cJSON *claims, const char *typ)
{
    cJSON *header = cJSON_CreateObject();
    cJSON_AddStringToObject(header, "alg", "EdDSA");
    cJSON_AddStringToObject(header, "kid", signer->kid);
    cJSON_AddStringToObject(header, "typ", typ ? typ : "JWT");
    char *header_text = cJSON_PrintUnformatted(header);
    char *claims_text = cJSON_PrintUnformatted(claims);
    char *header_part = b64url_encode((unsigned char *)header_text, strlen(header_text));
    char *claims_part = b64url_encode((unsigned char *)claims_text, strlen(claims_text));
    size_t size = strlen(header_part) + strlen(claims_part) + 100;
    char *token = malloc(size);
    snprintf(token, size, "%s.%s", header_part, claims_part);
    unsigned char signature[64];
    size_t signature_length = sizeof signature;
    EVP_MD_CTX *context = EVP_MD_CTX_new();
    EVP_DigestSignInit(context, NULL, NULL, NULL, signer->key);
    EVP_DigestSign(context, signature, &signature_length, (unsigned char *)token, strlen(token));
    EVP_MD_CTX_free(context);
    char *signature_part = b64url_encode(signature, signature_length);
    strcat(token, ".");
    strcat(token, signature_part);
    free(signature_part);
    free(header_part);
    free(claims_part);
    cJSON_free(header_text);
    cJSON_free(claims_text);
    cJSON_Delete(header);
    return token;
}

/* -- the fake server ------------------------------------------------------------------- */

struct fake_server {
    int listener;
    char url[64];
    handler_fn handler;
    void *user;
    pthread_t thread;
    atomic_int requests;
};

response json_response(int status, cJSON *body)
{
    response answer = {status, body ? cJSON_PrintUnformatted(body) : NULL, NULL};
    cJSON_Delete(body);
    return answer;
}

response error_response(int status, const char *code, const char *message, cJSON *details)
{
    cJSON *body = cJSON_CreateObject();
    cJSON *error = cJSON_AddObjectToObject(body, "error");
    cJSON_AddStringToObject(error, "code", code);
    cJSON_AddStringToObject(error, "message", message);
    cJSON_AddItemToObject(error, "details", details ? details : cJSON_CreateObject());
    return json_response(status, body);
}

static bool read_request(int fd, request *out)
{
    char buffer[65536];
    size_t used = 0;
    char *end = NULL;
    while (end == NULL && used < sizeof buffer - 1) {
        ssize_t n = recv(fd, buffer + used, sizeof buffer - 1 - used, 0);
        if (n <= 0)
            return false;
        used += (size_t)n;
        buffer[used] = '\0';
        end = strstr(buffer, "\r\n\r\n");
    }
    if (end == NULL)
        return false;
    size_t head = (size_t)(end - buffer) + 4;
    size_t length = 0;
    for (char *line = strstr(buffer, "\r\n"); line != NULL && line < end;
         line = strstr(line + 2, "\r\n")) {
        if (strncasecmp(line + 2, "Content-Length:", 15) == 0)
            length = (size_t)strtoul(line + 17, NULL, 10);
        if (strncasecmp(line + 2, "Authorization:", 14) == 0)
            sscanf(line + 16, " %511[^\r]", out->authorization);
    }
    while (used < head + length && used < sizeof buffer - 1) {
        ssize_t n = recv(fd, buffer + used, sizeof buffer - 1 - used, 0);
        if (n <= 0)
            return false;
        used += (size_t)n;
    }
    buffer[used] = '\0';
    sscanf(buffer, "%15s %255s", out->method, out->path);
    out->body = length > 0 ? cJSON_ParseWithLength(buffer + head, length) : NULL;
    return true;
}

static void *serve(void *argument)
{
    fake_server *server = argument;
    for (;;) {
        int fd = accept(server->listener, NULL, NULL);
        if (fd < 0)
            return NULL;
        request incoming;
        memset(&incoming, 0, sizeof incoming);
        if (read_request(fd, &incoming)) {
            if (strcmp(incoming.path, "/__stop__") == 0) {
                close(fd);
                return NULL;
            }
            server->requests++;
            response answer = server->handler(&incoming, server->user);
            const char *body = answer.body ? answer.body : "";
            char head[512];
            int size = snprintf(head, sizeof head,
                                "HTTP/1.1 %d X\r\nContent-Type: application/json\r\n"
                                "Content-Length: %zu\r\nConnection: close\r\n%s%s\r\n",
                                answer.status, strlen(body),
                                answer.extra_header ? answer.extra_header : "",
                                answer.extra_header ? "\r\n" : "");
            send(fd, head, (size_t)size, MSG_NOSIGNAL);
            send(fd, body, strlen(body), MSG_NOSIGNAL);
            cJSON_free(answer.body);
            cJSON_Delete(incoming.body);
        }
        close(fd);
    }
}

fake_server *fake_server_start(handler_fn handler, void *user)
{
    fake_server *server = calloc(1, sizeof *server);
    server->handler = handler;
    server->user = user;
    server->listener = socket(AF_INET, SOCK_STREAM, 0);
    int yes = 1;
    setsockopt(server->listener, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    struct sockaddr_in address = {0};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t size = sizeof address;
    if (bind(server->listener, (struct sockaddr *)&address, sizeof address) != 0 ||
        listen(server->listener, 16) != 0 ||
        getsockname(server->listener, (struct sockaddr *)&address, &size) != 0) {
        perror("fake server");
        exit(2);
    }
    snprintf(server->url, sizeof server->url, "http://127.0.0.1:%d", ntohs(address.sin_port));
    pthread_create(&server->thread, NULL, serve, server);
    return server;
}

const char *fake_server_url(const fake_server *server)
{
    return server->url;
}

int fake_server_requests(const fake_server *server)
{
    return server->requests;
}

void fake_server_stop(fake_server *server)
{
    /* a request the thread answers by returning: no thread is cancelled mid-way */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in address = {0};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = htons((uint16_t)atoi(strrchr(server->url, ':') + 1));
    if (connect(fd, (struct sockaddr *)&address, sizeof address) == 0) {
        const char stop[] = "GET /__stop__ HTTP/1.1\r\nHost: x\r\n\r\n";
        send(fd, stop, sizeof stop - 1, MSG_NOSIGNAL);
    }
    pthread_join(server->thread, NULL);
    close(fd);
    close(server->listener);
    free(server);
}

char *dead_url(void)
{
    /* a port that was free a moment ago: bound, then closed without listening */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in address = {0};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t size = sizeof address;
    bind(fd, (struct sockaddr *)&address, sizeof address);
    getsockname(fd, (struct sockaddr *)&address, &size);
    close(fd);
    char *url = malloc(64);
    snprintf(url, 64, "http://127.0.0.1:%d", ntohs(address.sin_port));
    return url;
}

int64_t fixed_clock(void *moment)
{
    return *(int64_t *)moment;
}
