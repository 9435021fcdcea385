/* The data folder: JSON documents, each read whole and replaced atomically (temp file in the
 * same folder, fsync, rename, fsync of the folder), files 0600 and the folder 0700: the stored
 * activation holds the license's password. The same files as the Python kit's storage.py. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

char *path_join(const char *folder, const char *name)
{
    size_t length = strlen(folder);
    bool slash = length > 0 && folder[length - 1] == '/';
    return format_text("%s%s%s", folder, slash ? "" : "/", name);
}

/* mkdir -p with mode 0700 for what it creates. */
static int make_folders(const char *path)
{
    char *copy = strdup(path);
    if (copy == NULL)
        return -1;
    int result = 0;
    for (char *p = copy + 1; ; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char kept = *p;
        *p = '\0';
        if (mkdir(copy, 0700) != 0 && errno != EEXIST) {
            result = -1;
            break;
        }
        *p = kept;
        if (kept == '\0')
            break;
    }
    free(copy);
    if (result == 0) {
        struct stat info;
        if (stat(path, &info) != 0 || !S_ISDIR(info.st_mode)) {
            errno = ENOTDIR;
            result = -1;
        }
    }
    return result;
}

lc_status store_ensure_folder(lc_client *client)
{
    const char *folder;
    lc_status status = client_folder(client, &folder);
    if (status != LC_OK)
        return status;
    if (make_folders(folder) != 0)
        return client_fail(client, LC_ERR_STORAGE, "storage_error", NULL,
                           "cannot create the data folder %s: %s", folder, strerror(errno));
    return LC_OK;
}

char *read_text_file(const char *path, size_t limit, size_t *length)
{
    FILE *file = fopen(path, "rb");
    if (file == NULL)
        return NULL;
    char *data = malloc(limit + 2);
    if (data == NULL) {
        fclose(file);
        errno = ENOMEM;
        return NULL;
    }
    size_t used = fread(data, 1, limit + 1, file);
    int failed = ferror(file);
    fclose(file);
    if (failed) {
        free(data);
        errno = EIO;
        return NULL;
    }
    data[used] = '\0';
    *length = used;
    return data;
}

/* The path of the data folder's file `name` (the caller frees it). */
static lc_status store_path(lc_client *client, const char *name, char **out)
{
    *out = NULL;
    const char *folder;
    lc_status status = client_folder(client, &folder);
    if (status != LC_OK)
        return status;
    *out = path_join(folder, name);
    return *out != NULL ? LC_OK : client_fail_oom(client);
}

lc_status store_read(lc_client *client, const char *name, cJSON **out)
{
    *out = NULL;
    char *path;
    lc_status status = store_path(client, name, &path);
    if (status != LC_OK)
        return status;
    size_t length;
    /* no document of the kit comes near 4 MiB; a bigger file is as good as damaged */
    char *text = read_text_file(path, 4 << 20, &length);
    if (text == NULL) {
        int error = errno;
        if (error == ENOENT || error == ENOTDIR) {
            free(path);
            return LC_OK;
        }
        status = client_fail(client, error == ENOMEM ? LC_ERR_NO_MEMORY : LC_ERR_STORAGE,
                             "storage_error", NULL, "cannot read %s: %s", path, strerror(error));
        free(path);
        return status;
    }
    free(path);
    /* a damaged file is as good as none; the next write replaces it */
    cJSON *document = length <= (4u << 20) ? json_parse(text, length) : NULL;
    free(text);
    if (document != NULL && !cJSON_IsObject(document)) {
        cJSON_Delete(document);
        document = NULL;
    }
    *out = document;
    return LC_OK;
}

static int fsync_folder(const char *path)
{
    char *folder = strdup(path);
    if (folder == NULL)
        return -1;
    char *slash = strrchr(folder, '/');
    if (slash == folder)
        slash[1] = '\0';
    else if (slash != NULL)
        *slash = '\0';
    else
        strcpy(folder, ".");
    int fd = open(folder, O_RDONLY | O_DIRECTORY);
    free(folder);
    if (fd < 0)
        return -1;
    int result = 0, error = 0;
    /* EINVAL: a file system that cannot sync a folder at all (some network ones), where
     * there is nothing more to make durable */
    if (fsync(fd) != 0 && errno != EINVAL) {
        error = errno;
        result = -1;
    }
    close(fd);
    errno = error;
    return result;
}

int atomic_write(const char *path, const char *data, size_t length, int mode)
{
    /* the temp file's name is .<name>.XXXXXX.tmp beside it, as Python's mkstemp makes it */
    const char *slash = strrchr(path, '/');
    const char *base = slash != NULL ? slash + 1 : path;
    char *temp = format_text("%.*s.%s.XXXXXX.tmp", (int)(base - path), path, base);
    if (temp == NULL) {
        errno = ENOMEM;
        return -1;
    }
    int fd = mkstemps(temp, 4); /* created 0600: the secret is never readable by others */
    if (fd < 0) {
        int error = errno;
        free(temp);
        errno = error;
        return -1;
    }
    size_t written = 0;
    int error = 0;
    while (written < length) {
        ssize_t n = write(fd, data + written, length - written);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            error = errno;
            break;
        }
        written += (size_t)n;
    }
    if (error == 0 && fsync(fd) != 0)
        error = errno;
    if (error == 0 && fchmod(fd, (mode_t)mode) != 0)
        error = errno;
    if (close(fd) != 0 && error == 0)
        error = errno;
    if (error == 0 && rename(temp, path) != 0)
        error = errno;
    if (error != 0) {
        unlink(temp);
        free(temp);
        errno = error;
        return -1;
    }
    free(temp);
    /* makes the rename itself durable: until then a crash may bring back the old file */
    return fsync_folder(path);
}

lc_status store_write(lc_client *client, const char *name, cJSON *document)
{
    lc_status status = store_ensure_folder(client);
    if (status != LC_OK)
        return status;
    char *path;
    status = store_path(client, name, &path);
    if (status != LC_OK)
        return status;
    char *text = json_print_sorted(document);
    if (text == NULL) {
        free(path);
        return client_fail_oom(client);
    }
    if (atomic_write(path, text, strlen(text), 0600) != 0)
        status = client_fail(client, LC_ERR_STORAGE, "storage_error", NULL, "cannot write %s: %s",
                             path, strerror(errno));
    free(text);
    free(path);
    return status;
}

lc_status store_remove(lc_client *client, const char *name)
{
    char *path;
    lc_status status = store_path(client, name, &path);
    if (status != LC_OK)
        return status;
    if (unlink(path) != 0 && errno != ENOENT && errno != ENOTDIR)
        status = client_fail(client, LC_ERR_STORAGE, "storage_error", NULL,
                             "cannot remove %s: %s", path, strerror(errno));
    free(path);
    return status;
}

void store_lock(lc_client *client)
{
    if (client->lease_lock_depth++ > 0)
        return;
    client->lease_lock_fd = -1;
    /* where the lock file cannot be made (a read-only folder) no write can succeed either */
    if (store_ensure_folder(client) != LC_OK)
        return;
    char *path = path_join(client->data_dir, "." LEASE_FILE ".lock");
    if (path == NULL)
        return;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    free(path);
    if (fd < 0)
        return;
    while (flock(fd, LOCK_EX) != 0) {
        if (errno != EINTR) {
            close(fd);
            return;
        }
    }
    client->lease_lock_fd = fd;
}

void store_unlock(lc_client *client)
{
    if (client->lease_lock_depth == 0 || --client->lease_lock_depth > 0)
        return;
    if (client->lease_lock_fd >= 0) {
        flock(client->lease_lock_fd, LOCK_UN);
        close(client->lease_lock_fd);
    }
    client->lease_lock_fd = -1;
}

lc_status lc_write_file(lc_client *client, const char *path, const char *data, size_t length,
                        int mode)
{
    if (client == NULL)
        return LC_ERR_USAGE;
    client_clear_error(client);
    if (path == NULL || (data == NULL && length > 0))
        return client_fail(client, LC_ERR_USAGE, "usage_error", NULL,
                           "lc_write_file needs a path and data.");
    if (atomic_write(path, data != NULL ? data : "", length, mode) != 0)
        return client_fail(client, LC_ERR_STORAGE, "cannot_write_file", NULL,
                           "Cannot write %s: %s.", path, strerror(errno));
    return LC_OK;
}
