/* One data folder for both kits: what the C library writes, the Python kit (the reference)
 * reads, and the reverse. Runs the Python kit's CLI ($LICENSE_CLIENT_PYTHON -m
 * license_client) against the same fake portal; skipped (77) when no Python kit is there. */
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "internal.h"
#include "portal.h"
#include "tests.h"

#define SKIPPED 77

/* The Python CLI's exit code and its standard output (parsed as JSON) for `arguments`. */
static int python_kit(const char *python, const char *arguments, cJSON **output)
{
    char *command = format_text("%s -m license_client %s 2>/dev/null", python, arguments);
    FILE *pipe = popen(command, "r");
    free(command);
    char buffer[16384];
    size_t used = pipe ? fread(buffer, 1, sizeof buffer - 1, pipe) : 0;
    buffer[used] = '\0';
    int status = pipe ? pclose(pipe) : -1;
    *output = cJSON_Parse(buffer);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

int test_python(void)
{
    const char *python = getenv("LICENSE_CLIENT_PYTHON");
    if (python == NULL || access(python, X_OK) != 0) {
        printf("skipped: no Python kit ($LICENSE_CLIENT_PYTHON) to compare with\n");
        return SKIPPED;
    }
    portal portal = {
        .signer = signer_new("k1"), .now = time(NULL), .product = "cadpro", .verdict = "VALID"};
    fake_server *server = fake_server_start(portal_handle, &portal);
    char *c_folder = make_temp_folder();
    char *py_folder = make_temp_folder();

    /* activated by C, read by Python */
    lc_client *client = portal_client(&portal, fake_server_url(server), c_folder);
    CHECK_STATUS(lc_activate(client, "L-TEST-0001", "secret", "C-WS", NULL), LC_OK, client);
    lc_client_free(client);
    char *arguments = format_text("status --offline --json --data-dir %s --product cadpro "
                                  "--installation-id inst-test-1",
                                  c_folder);
    cJSON *status = NULL;
    CHECK(python_kit(python, arguments, &status) == 0);
    free(arguments);
    CHECK(cJSON_IsTrue(cJSON_GetObjectItem(status, "activated")));
    CHECK_STR(json_str(json_obj(status, "validation"), "code"), LC_VALID);
    CHECK_STR(json_str(status, "machine_name"), "C-WS");
    CHECK_STR(json_str(status, "server"), fake_server_url(server));
    cJSON_Delete(status);

    /* activated by Python, read and deactivated by C */
    arguments = format_text("activate L-TEST-0001 --password secret --machine-name PY-WS --json "
                            "--server %s --data-dir %s --product cadpro "
                            "--installation-id inst-test-1",
                            fake_server_url(server), py_folder);
    CHECK(python_kit(python, arguments, &status) == 0);
    free(arguments);
    cJSON_Delete(status);
    CHECK(portal.activations == 2);
    lc_client_new(&client);
    lc_client_set_product(client, "cadpro");
    lc_client_set_data_dir(client, py_folder);
    lc_client_set_installation_id(client, "inst-test-1");
    lc_status_report *report = NULL;
    CHECK_STATUS(lc_status_get(client, LC_OFFLINE, &report), LC_OK, client);
    CHECK_STR(report ? report->validation->code : NULL, LC_VALID);
    CHECK_STR(report ? report->machine_name : NULL, "PY-WS");
    CHECK(report != NULL && report->feature_count == 1);
    lc_status_report_free(report);
    lc_validation *result = NULL;
    CHECK_STATUS(lc_validate(client, LC_ONLINE, &result), LC_OK, client);
    CHECK(result != NULL && result->valid && result->online);
    lc_validation_free(result);
    CHECK_STATUS(lc_deactivate(client, NULL), LC_OK, client); /* its server, its password */
    CHECK(portal.deactivations == 1);
    lc_client_free(client);
    arguments = format_text("status --offline --json --data-dir %s --product cadpro "
                            "--installation-id inst-test-1",
                            py_folder);
    CHECK(python_kit(python, arguments, &status) == 3); /* not activated */
    free(arguments);
    cJSON_Delete(status);

    remove_tree(c_folder);
    remove_tree(py_folder);
    free(c_folder);
    free(py_folder);
    fake_server_stop(server);
    signer_free(portal.signer);
    return 0;
}
