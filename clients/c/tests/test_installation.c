/* The installation ID: the Python kit's for the same inputs, so both kits name a machine
 * alike (the expected values are the Python kit's installation.derive()). */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "internal.h"
#include "support.h"
#include "tests.h"

static void same_as_python(void)
{
    /* vectors.json's installation block, made with the Python kit's algorithm */
    char *id = hash_installation_id("cadpro", "3f9a1c0e5b7d4e2a8c6f0b1d2e3a4c5f");
    CHECK_STR(id, "bce5f01c0b6e9e8f830837ba2807211fd47bbfbb9f064d5766ac77ba058ba7bc");
    free(id);
    /* stripped and lower-cased before hashing */
    id = hash_installation_id("femsolver", "  3F9A1C0E5B7D4E2A8C6F0B1D2E3A4C5F\n");
    CHECK_STR(id, "2066f2721715eb5401e593b4a1baae97ec0d6664d10a157236e8dd55619c5303");
    free(id);
    id = hash_installation_id("default", "abc");
    CHECK_STR(id, "03d05b38e0f86f201da98e226b1a73060234f0313974f0022fdeb3005bfa4155");
    free(id);
    id = hash_installation_id("Bureau M\xc3\xbcller", "ec2a6f0e-1b2c");
    CHECK_STR(id, "e440a80b8e6e4b16085483010af0686da16502afe61ffb297d9c28719d6bdcc4");
    free(id);
}

static void derived_and_overridden(void)
{
    char *folder = make_temp_folder();
    lc_client *client;
    lc_client_new(&client);
    lc_client_set_data_dir(client, folder);
    lc_client_set_product(client, "cadpro");
    const char *id;
    CHECK_STATUS(lc_installation_id(client, &id), LC_OK, client);
    CHECK(id != NULL && strlen(id) == 64);
    /* the namespace, not the product, when one is given */
    char *first = strdup(id);
    lc_client_set_namespace(client, "vendor-x");
    CHECK_STATUS(lc_installation_id(client, &id), LC_OK, client);
    CHECK(strcmp(first, id) != 0);
    free(first);
    /* an explicit ID is used as it is, stripped, not hashed */
    lc_client_set_installation_id(client, "  ws-07.example  ");
    CHECK_STATUS(lc_installation_id(client, &id), LC_OK, client);
    CHECK_STR(id, "ws-07.example");
    lc_client_set_installation_id(client, "has space");
    CHECK_STATUS(lc_installation_id(client, &id), LC_ERR_USAGE, client);
    lc_client_set_installation_id(client, NULL);
    setenv("LICENSE_CLIENT_INSTALLATION_ID", "from-the-environment", 1);
    CHECK_STATUS(lc_installation_id(client, &id), LC_OK, client);
    CHECK_STR(id, "from-the-environment");
    unsetenv("LICENSE_CLIENT_INSTALLATION_ID");
    lc_client_free(client);
    remove_tree(folder);
    free(folder);
}

static void default_data_dir(void)
{
    lc_client *client;
    lc_client_new(&client);
    lc_client_set_product(client, "CAD Pro/2");
    setenv("XDG_DATA_HOME", "/srv/data", 1);
    const char *folder;
    CHECK_STATUS(lc_data_dir(client, &folder), LC_OK, client);
    CHECK_STR(folder, "/srv/data/license-client/CAD-Pro-2");
    /* a relative XDG_DATA_HOME is invalid and ignored */
    setenv("XDG_DATA_HOME", "relative", 1);
    setenv("HOME", "/home/ada", 1);
    lc_client_set_product(client, "cadpro");
    CHECK_STATUS(lc_data_dir(client, &folder), LC_OK, client);
    CHECK_STR(folder, "/home/ada/.local/share/license-client/cadpro");
    setenv("LICENSE_CLIENT_DATA_DIR", "~/licenses", 1);
    lc_client_set_product(client, "cadpro");
    CHECK_STATUS(lc_data_dir(client, &folder), LC_OK, client);
    CHECK_STR(folder, "/home/ada/licenses");
    unsetenv("LICENSE_CLIENT_DATA_DIR");
    unsetenv("XDG_DATA_HOME");
    lc_client_free(client);
}

void test_installation(void)
{
    same_as_python();
    derived_and_overridden();
    default_data_dir();
}
