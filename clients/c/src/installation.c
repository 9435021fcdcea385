/* A stable, anonymous installation ID: SHA-256("license-client/v1\0" + namespace + "\0" +
 * machine identifier) in hex, the Python kit's installation.py exactly, so both kits name
 * this machine alike. The identifier is /etc/machine-id, else /var/lib/dbus/machine-id, else
 * a random one kept in the data folder (machine-id); only the hash leaves the machine. */
#include <ctype.h>
#include <errno.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static const char *const MACHINE_ID_FILES[] = {"/etc/machine-id", "/var/lib/dbus/machine-id"};

char *hash_installation_id(const char *name_space, const char *identifier)
{
    /* the identifier stripped and lower-cased, as Python's .strip().lower() does */
    while (isspace((unsigned char)*identifier))
        identifier++;
    size_t length = strlen(identifier);
    while (length > 0 && isspace((unsigned char)identifier[length - 1]))
        length--;
    char *lowered = strndup(identifier, length);
    if (lowered == NULL)
        return NULL;
    for (char *p = lowered; *p != '\0'; p++)
        *p = (char)tolower((unsigned char)*p);
    unsigned char digest[32];
    unsigned int digest_length = 0;
    EVP_MD_CTX *context = EVP_MD_CTX_new();
    bool ok = context != NULL && EVP_DigestInit_ex(context, EVP_sha256(), NULL) == 1 &&
              EVP_DigestUpdate(context, "license-client/v1\0", 18) == 1 &&
              EVP_DigestUpdate(context, name_space, strlen(name_space)) == 1 &&
              EVP_DigestUpdate(context, "\0", 1) == 1 &&
              EVP_DigestUpdate(context, lowered, strlen(lowered)) == 1 &&
              EVP_DigestFinal_ex(context, digest, &digest_length) == 1;
    EVP_MD_CTX_free(context);
    free(lowered);
    if (!ok)
        return NULL;
    char *hex = malloc(65);
    if (hex == NULL)
        return NULL;
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", digest[i]);
    return hex;
}

/* An ID file's value; NULL when missing, empty, all zeros or systemd's "uninitialized". */
static char *read_id_file(const char *path)
{
    size_t length;
    char *text = read_text_file(path, 4096, &length);
    if (text == NULL)
        return NULL;
    /* read as ASCII with errors ignored: other bytes are dropped, like Python's */
    size_t used = 0;
    for (size_t i = 0; i < length; i++) {
        if ((unsigned char)text[i] < 0x80 && text[i] != '\0')
            text[used++] = text[i];
    }
    text[used] = '\0';
    char *start = text;
    while (isspace((unsigned char)*start))
        start++;
    size_t size = strlen(start);
    while (size > 0 && isspace((unsigned char)start[size - 1]))
        size--;
    start[size] = '\0';
    bool zeros = true;
    for (char *p = start; *p != '\0'; p++)
        zeros = zeros && *p == '0';
    char *value = size == 0 || zeros || strcmp(start, "uninitialized") == 0 ? NULL : strdup(start);
    free(text);
    return value;
}

static lc_status persisted_identifier(lc_client *client, char **out)
{
    lc_status status = store_ensure_folder(client);
    if (status != LC_OK)
        return status;
    char *path = path_join(client->data_dir, MACHINE_ID_FILE);
    if (path == NULL)
        return client_fail_oom(client);
    char *value = read_id_file(path);
    if (value == NULL) {
        unsigned char random[16];
        char hex[34];
        if (RAND_bytes(random, sizeof random) != 1) {
            free(path);
            return client_fail(client, LC_ERR_STORAGE, "storage_error", NULL,
                               "no random source for a machine identifier");
        }
        for (int i = 0; i < 16; i++)
            snprintf(hex + 2 * i, 3, "%02x", random[i]);
        hex[32] = '\n';
        hex[33] = '\0';
        if (atomic_write(path, hex, 33, 0600) != 0) {
            status = client_fail(client, LC_ERR_STORAGE, "storage_error", NULL,
                                 "cannot write %s: %s", path, strerror(errno));
            free(path);
            return status;
        }
        /* two processes may race on the first run: whichever file won is the one to use */
        value = read_id_file(path);
        if (value == NULL) {
            hex[32] = '\0';
            value = strdup(hex);
        }
    }
    free(path);
    if (value == NULL)
        return client_fail_oom(client);
    *out = value;
    return LC_OK;
}

static bool allowed_id(const char *text)
{
    size_t length = strlen(text);
    if (length < 1 || length > 128)
        return false;
    for (const char *p = text; *p != '\0'; p++) {
        if ((unsigned char)*p < 0x21 || (unsigned char)*p > 0x7e)
            return false;
    }
    return true;
}

lc_status derive_installation_id(lc_client *client, char **out)
{
    const char *explicit = client->installation_option;
    if (explicit == NULL || explicit[0] == '\0')
        explicit = getenv("LICENSE_CLIENT_INSTALLATION_ID");
    if (explicit != NULL && explicit[0] != '\0') {
        while (isspace((unsigned char)*explicit))
            explicit++;
        size_t length = strlen(explicit);
        while (length > 0 && isspace((unsigned char)explicit[length - 1]))
            length--;
        char *value = strndup(explicit, length);
        if (value == NULL)
            return client_fail_oom(client);
        if (!allowed_id(value)) {
            free(value);
            return client_fail(client, LC_ERR_USAGE, "usage_error", NULL,
                               "an installation ID is 1-128 printable ASCII characters, no "
                               "spaces");
        }
        *out = value;
        return LC_OK;
    }
    char *identifier = NULL;
    for (size_t i = 0; i < sizeof MACHINE_ID_FILES / sizeof *MACHINE_ID_FILES && !identifier; i++)
        identifier = read_id_file(MACHINE_ID_FILES[i]);
    if (identifier == NULL) {
        lc_status status = persisted_identifier(client, &identifier);
        if (status != LC_OK)
            return status;
    }
    const char *name_space = client->name_space ? client->name_space
                             : client->product  ? client->product
                                                : "default";
    *out = hash_installation_id(name_space, identifier);
    free(identifier);
    return *out != NULL ? LC_OK : client_fail_oom(client);
}
