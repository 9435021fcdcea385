/* The data folder: atomic, private writes; damaged files read as none; folders made 0700. */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "internal.h"
#include "support.h"
#include "tests.h"

static int entries(const char *folder)
{
    DIR *dir = opendir(folder);
    int count = 0;
    for (struct dirent *entry; dir && (entry = readdir(dir)) != NULL;)
        count += entry->d_name[0] != '.' || strstr(entry->d_name, ".tmp") != NULL;
    if (dir)
        closedir(dir);
    return count;
}

static void atomic_and_private(void)
{
    char *root = make_temp_folder();
    char *folder = path_join(root, "nested/data");
    lc_client *client;
    lc_client_new(&client);
    lc_client_set_data_dir(client, folder);
    cJSON *document = cJSON_Parse("{\"b\": 2, \"a\": \"secret\"}");
    CHECK_STATUS(store_write(client, STATE_FILE, document), LC_OK, client);
    struct stat info;
    CHECK(stat(folder, &info) == 0 && (info.st_mode & 0777) == 0700);
    char *path = path_join(folder, STATE_FILE);
    CHECK(stat(path, &info) == 0 && (info.st_mode & 0777) == 0600);
    char *text = read_file_text(path);
    CHECK_STR(text, "{\n  \"a\": \"secret\",\n  \"b\": 2\n}\n");
    free(text);
    /* no temporary file stays behind */
    CHECK(entries(folder) == 1);
    cJSON *read = NULL;
    CHECK_STATUS(store_read(client, STATE_FILE, &read), LC_OK, client);
    CHECK(read != NULL && cJSON_GetObjectItem(read, "b")->valueint == 2);
    cJSON_Delete(read);
    /* a damaged file is as good as none (the next write replaces it); so is a JSON list */
    write_file_text(path, "{\"cut\": ");
    CHECK_STATUS(store_read(client, STATE_FILE, &read), LC_OK, client);
    CHECK(read == NULL);
    write_file_text(path, "[1, 2]");
    CHECK_STATUS(store_read(client, STATE_FILE, &read), LC_OK, client);
    CHECK(read == NULL);
    CHECK_STATUS(store_read(client, "missing.json", &read), LC_OK, client);
    CHECK(read == NULL);
    CHECK_STATUS(store_remove(client, "missing.json"), LC_OK, client);
    /* a folder that cannot be written: an error, and the old file is intact */
    write_file_text(path, "{\"old\": true}\n");
    if (geteuid() != 0) { /* root writes anywhere */
        chmod(folder, 0500);
        CHECK_STATUS(store_write(client, STATE_FILE, document), LC_ERR_STORAGE, client);
        CHECK_STR(lc_client_error_code(client), "storage_error");
        text = read_file_text(path);
        CHECK_STR(text, "{\"old\": true}\n");
        free(text);
        chmod(folder, 0700);
    }
    /* the rename fails (a folder is in the way): an error, and no temporary file stays */
    char *in_the_way = path_join(folder, KEYS_FILE);
    char *inside = path_join(in_the_way, "x");
    mkdir(in_the_way, 0700);
    write_file_text(inside, "x");
    CHECK_STATUS(store_write(client, KEYS_FILE, document), LC_ERR_STORAGE, client);
    CHECK(entries(folder) == 2);
    free(inside);
    free(in_the_way);
    /* the data folder's place taken by a file */
    char *blocked = path_join(root, "blocked");
    write_file_text(blocked, "x");
    lc_client_set_data_dir(client, blocked);
    CHECK_STATUS(store_write(client, STATE_FILE, document), LC_ERR_STORAGE, client);
    free(blocked);
    cJSON_Delete(document);
    free(path);
    lc_client_free(client);
    remove_tree(root);
    free(root);
    free(folder);
}

static void write_file_atomically(void)
{
    char *root = make_temp_folder();
    char *path = path_join(root, "request.json");
    lc_client *client;
    lc_client_new(&client);
    CHECK_STATUS(lc_write_file(client, path, "{}\n", 3, 0644), LC_OK, client);
    struct stat info;
    CHECK(stat(path, &info) == 0 && (info.st_mode & 0777) == 0644);
    CHECK_STATUS(lc_write_file(client, path, "{\"new\": 1}\n", 11, 0644), LC_OK, client);
    char *text = read_file_text(path);
    CHECK_STR(text, "{\"new\": 1}\n");
    free(text);
    CHECK(entries(root) == 1);
    char *nowhere = path_join(root, "no/such/folder/file");
    CHECK_STATUS(lc_write_file(client, nowhere, "x", 1, 0644), LC_ERR_STORAGE, client);
    CHECK_STR(lc_client_error_code(client), "cannot_write_file");
    free(nowhere);
    free(path);
    lc_client_free(client);
    remove_tree(root);
    free(root);
}

static void lock_is_reentrant(void)
{
    char *root = make_temp_folder();
    lc_client *client;
    lc_client_new(&client);
    lc_client_set_data_dir(client, root);
    store_lock(client);
    store_lock(client); /* the same handle again: no deadlock */
    CHECK(client->lease_lock_fd >= 0 && client->lease_lock_depth == 2);
    store_unlock(client);
    CHECK(client->lease_lock_fd >= 0);
    store_unlock(client);
    CHECK(client->lease_lock_fd < 0 && client->lease_lock_depth == 0);
    lc_client_free(client);
    remove_tree(root);
    free(root);
}

void test_storage(void)
{
    atomic_and_private();
    write_file_atomically();
    lock_is_reentrant();
}
