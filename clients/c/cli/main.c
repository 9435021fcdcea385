/* license-client-c: activate, deactivate and check this machine's license from a shell, on
 * the C library; the Python kit's `license-client` command for machines without Python.
 *
 *     license-client-c --server URL activate LICENSE_ID [--password P] [--machine-name NAME]
 *     license-client-c status [--offline]
 *     license-client-c deactivate
 *     license-client-c id
 *
 *     license-client-c offline-request --license-id L --product P [--machine-name N] --out FILE
 *     license-client-c offline-install FILE [--product P] [--jwks FILE]
 *     license-client-c deactivate --offline --out FILE
 *
 *     license-client-c checkout [LICENSE_ID] [--password P]   # a floating license's seat, held
 *     license-client-c borrow --days N [LICENSE_ID]           # a seat to take along, offline
 *     license-client-c checkin
 *
 * Same options, environment variables, --json documents and exit codes as `license-client`
 * (clients/python/src/license_client/cli.py), on the same data folder.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "args.h"
#include "license_client.h"
#include "output.h"

#define SERVER_ENV "LICENSE_SERVER_URL"
#define PRODUCT_ENV "LICENSE_CLIENT_PRODUCT"
#define PASSWORD_ENV "LICENSE_CLIENT_PASSWORD"
/* a response file is at most 16 KiB (the Python kit's offline.MAX_FILE_BYTES); one byte more
 * is read so that the library refuses a longer one */
#define MAX_FILE_BYTES (16 * 1024)

static char password_buffer[1024];
/* set by SIGINT or SIGTERM while `checkout` holds a seat */
static volatile sig_atomic_t leaving;

/* A non-empty environment variable, else NULL (the Python CLI's `os.environ.get(X) or None`). */
static const char *env(const char *name)
{
    const char *value = getenv(name);
    return value && *value ? value : NULL;
}

/* The password typed at a terminal (not echoed), else one line of standard input. */
static const char *read_password(const char *license_id)
{
    bool terminal = isatty(STDIN_FILENO);
    struct termios saved, quiet;
    if (terminal) {
        fprintf(stderr, "Activation password for %s: ", license_id);
        fflush(stderr);
        tcgetattr(STDIN_FILENO, &saved);
        quiet = saved;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
    }
    bool got = fgets(password_buffer, sizeof password_buffer, stdin) != NULL;
    if (terminal) {
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved);
        fputc('\n', stderr);
    }
    if (leaving) /* Ctrl-C at the prompt of `checkout` */
        exit(130);
    if (!got)
        password_buffer[0] = '\0';
    password_buffer[strcspn(password_buffer, "\r\n")] = '\0';
    return password_buffer;
}

static const char *given_password(const cli_args *args)
{
    return args->password ? args->password : env(PASSWORD_ENV);
}

/* -- node-locked ------------------------------------------------------------------------ */

static int cmd_activate(lc_client *client, const cli_args *args)
{
    const char *password = given_password(args);
    if (!password)
        password = read_password(args->license_id);
    lc_validation *validation = NULL;
    lc_status status =
        lc_activate(client, args->license_id, password, args->machine_name, &validation);
    if (status != LC_OK)
        return fail(client, status, args, 0);
    if (!args->json)
        printf("Activated license %s on this machine.\n", args->license_id);
    lc_status_report *report = NULL;
    if ((status = lc_status_get(client, LC_OFFLINE, &report)) != LC_OK) {
        lc_validation_free(validation);
        return fail(client, status, args, 0);
    }
    /* the server just issued the certificate: the activation's own (online) verdict; both
     * are the library's, so lc_status_report_free() frees the one swapped in */
    lc_validation_free(report->validation);
    report->validation = validation;
    int code = show_status(report, args);
    lc_status_report_free(report);
    return code;
}

static int deactivate_offline(lc_client *client, const cli_args *args)
{
    if (!args->out)
        return fail_usage(args, "`deactivate --offline` needs --out FILE: where to write the "
                                "proof.");
    char *proof = NULL;
    /* the proof is written out before the certificate is deleted: a failed write loses nothing */
    lc_status status = lc_deactivate_offline(client, args->out, &proof);
    if (status != LC_OK)
        return fail(client, status, args, 0);
    cJSON *document = cJSON_Parse(proof);
    lc_free(proof);
    const cJSON *named = cJSON_GetObjectItemCaseSensitive(document, "license_id");
    const char *license_id = cJSON_IsString(named) ? named->valuestring : "?";
    const char *installation_id = "";
    lc_installation_id(client, &installation_id);
    if (args->json) {
        cJSON *out = cJSON_CreateObject();
        cJSON_AddBoolToObject(out, "deactivated", true);
        cJSON_AddBoolToObject(out, "offline", true);
        cJSON_AddStringToObject(out, "license_id", license_id);
        cJSON_AddStringToObject(out, "installation_id", installation_id);
        cJSON_AddStringToObject(out, "proof_file", args->out);
        emit(out);
    } else {
        printf("Deleted this machine's certificate of license %s and wrote the deactivation "
               "proof to %s.\nUpload the proof on the license's page in the portal (Offline "
               "deactivation) to free the seat.\n",
               license_id, args->out);
    }
    cJSON_Delete(document);
    return EXIT_VALID;
}

static int cmd_deactivate(lc_client *client, const cli_args *args)
{
    if (args->offline)
        return deactivate_offline(client, args);
    if (args->out)
        return fail_usage(args, "--out is for `deactivate --offline` (the proof file).");
    lc_status_report *report = NULL;
    lc_status status = lc_status_get(client, LC_OFFLINE, &report);
    if (status == LC_OK)
        status = lc_deactivate(client, given_password(args));
    int code = EXIT_VALID;
    if (status != LC_OK) {
        code = fail(client, status, args, 0);
    } else if (args->json) {
        cJSON *out = cJSON_CreateObject();
        cJSON_AddBoolToObject(out, "deactivated", true);
        cJSON_AddItemToObject(out, "license_id", report->license_id
                                                     ? cJSON_CreateString(report->license_id)
                                                     : cJSON_CreateNull());
        cJSON_AddStringToObject(out, "installation_id", report->installation_id);
        emit(out);
    } else {
        printf("Deactivated license %s on this machine; its seat is free.\n",
               report->license_id ? report->license_id : "?");
    }
    lc_status_report_free(report);
    return code;
}

static int cmd_status(lc_client *client, const cli_args *args)
{
    lc_status_report *report = NULL;
    lc_status status = lc_status_get(client, args->offline ? LC_OFFLINE : LC_ONLINE, &report);
    if (status != LC_OK)
        return fail(client, status, args, 0);
    int code = show_status(report, args);
    lc_status_report_free(report);
    return code;
}

static int cmd_id(lc_client *client, const cli_args *args)
{
    const char *installation_id = NULL, *data_dir = NULL;
    lc_status status = lc_installation_id(client, &installation_id);
    if (status == LC_OK)
        status = lc_data_dir(client, &data_dir);
    if (status != LC_OK)
        return fail(client, status, args, 0);
    if (args->json) {
        cJSON *out = cJSON_CreateObject();
        cJSON_AddStringToObject(out, "installation_id", installation_id);
        cJSON_AddStringToObject(out, "data_dir", data_dir);
        emit(out);
    } else {
        puts(installation_id);
    }
    return EXIT_VALID;
}

/* -- offline activation ----------------------------------------------------------------- */

static const char *field(const cJSON *document, const char *name)
{
    const cJSON *value = cJSON_GetObjectItemCaseSensitive(document, name);
    return cJSON_IsString(value) ? value->valuestring : "";
}

static int cmd_offline_request(lc_client *client, const cli_args *args)
{
    char *text = NULL;
    lc_status status = lc_offline_request(client, args->license_id, args->machine_name, &text);
    /* readable by others: a request holds no secret, and it is copied to a USB stick */
    if (status == LC_OK)
        status = lc_write_file(client, args->out, text, strlen(text), 0644);
    if (status != LC_OK) {
        lc_free(text);
        return fail(client, status, args, 0);
    }
    cJSON *request = cJSON_Parse(text);
    lc_free(text);
    if (args->json) {
        static const char *const FIELDS[] = {"license_id", "installation_id", "machine_name",
                                             "product", "requested_at"};
        cJSON *out = cJSON_CreateObject();
        cJSON_AddStringToObject(out, "request_file", args->out);
        for (size_t i = 0; i < sizeof FIELDS / sizeof FIELDS[0]; i++)
            cJSON_AddStringToObject(out, FIELDS[i], field(request, FIELDS[i]));
        emit(out);
    } else {
        printf("Wrote the activation request for license %s to %s.\nTake it to the portal (the "
               "license's page, Offline activation), then install the response file here "
               "with: %s offline-install FILE\n",
               field(request, "license_id"), args->out, PROG);
    }
    cJSON_Delete(request);
    return EXIT_VALID;
}

static int cmd_offline_install(lc_client *client, const cli_args *args)
{
    FILE *file = fopen(args->file, "rb");
    if (!file) {
        char message[1024];
        snprintf(message, sizeof message, "Cannot read %s: %s.", args->file, strerror(errno));
        return fail_usage(args, message);
    }
    static char text[MAX_FILE_BYTES + 1];
    size_t length = fread(text, 1, sizeof text, file);
    fclose(file);
    lc_validation *validation = NULL;
    lc_status status = lc_install_offline_response(client, text, length, &validation);
    if (status != LC_OK)
        return fail(client, status, args, 0);
    if (!args->json)
        printf("Installed the offline activation of license %s.\n",
               validation->license_id ? validation->license_id : "?");
    lc_validation_free(validation);
    lc_status_report *report = NULL;
    if ((status = lc_status_get(client, LC_OFFLINE, &report)) != LC_OK)
        return fail(client, status, args, 0);
    int code = show_status(report, args);
    lc_status_report_free(report);
    return code;
}

/* -- floating licenses ------------------------------------------------------------------ */

static void leave(int signal_number)
{
    (void)signal_number;
    leaving = 1;
}

/* Checks out (or borrows) with the given password, else the remembered one, else one asked
 * for. */
static lc_status checking_out(lc_client *client, const cli_args *args, bool borrow,
                              lc_lease **lease)
{
    const char *password = given_password(args);
    for (;;) {
        lc_status status =
            borrow
                ? lc_borrow(client, args->days, args->license_id, password, args->machine_name,
                            lease)
                : lc_checkout(client, args->license_id, password, args->machine_name, lease);
        if (status == LC_OK || password ||
            strcmp(lc_client_error_code(client), "password_required") != 0)
            return status;
        password = read_password(args->license_id ? args->license_id : "the license");
    }
}

static void print_lease(const lc_lease *lease)
{
    char *json = NULL;
    lc_lease_to_json(lease, &json);
    emit_text(json);
}

static int checkin_after_hold(lc_client *client, const lc_lease *lease, const cli_args *args)
{
    lc_status status = lc_checkin(client, NULL);
    if (status != LC_OK && status != LC_ERR_NOT_CHECKED_OUT)
        return fail(client, status, args, 0);
    fprintf(args->json ? stderr : stdout,
            "Checked in lease %s of license %s; the seat is free.\n", lease->lease_id,
            lease->license_id);
    return EXIT_VALID;
}

/* Holds the seat in the foreground, a heartbeat when one is due, until Ctrl-C or SIGTERM
 * (check in, exit 0) or until the lease is lost (exit 1). */
static int hold(lc_client *client, const lc_lease *lease, const cli_args *args)
{
    char until[32];
    if (args->json) {
        print_lease(lease);
    } else {
        printf("Checked out a seat of license %s on %s: lease %s, until %s, renewed every "
               "%lld s.\nHolding the seat; press Ctrl-C (or send SIGTERM) to check it in.\n",
               lease->license_id, lease->machine_name ? lease->machine_name : "this machine",
               lease->lease_id, when(lease->expires_at, until),
               (long long)lease->heartbeat_interval);
    }
    fflush(stdout);
    time_t next = time(NULL) + (lease->heartbeat_interval > 0 ? lease->heartbeat_interval : 1);
    while (!leaving) {
        sleep(1); /* a signal ends it early */
        if (leaving || time(NULL) < next)
            continue;
        lc_lease_status *where = NULL;
        lc_status status = lc_heartbeat(client, &where);
        if (status != LC_OK)
            return fail(client, status, args, EXIT_INVALID);
        bool lost = strcmp(where->state, "lost") == 0;
        if (lost)
            fprintf(stderr, "%s: the seat is lost: %s\n", PROG, where->reason);
        next = where->next_heartbeat_at > time(NULL) ? (time_t)where->next_heartbeat_at
                                                     : time(NULL) + 1;
        lc_lease_status_free(where);
        if (lost)
            return EXIT_INVALID;
    }
    return checkin_after_hold(client, lease, args);
}

static int cmd_checkout(lc_client *client, const cli_args *args)
{
    /* set before the check-out: a SIGTERM from then on ends the hold like Ctrl-C */
    struct sigaction action = {.sa_handler = leave};
    sigemptyset(&action.sa_mask);
    sigaction(SIGINT, &action, NULL);
    sigaction(SIGTERM, &action, NULL);
    lc_lease *lease = NULL;
    lc_status status = checking_out(client, args, false, &lease);
    if (status != LC_OK)
        return fail(client, status, args, 0);
    int code = EXIT_VALID;
    if (lease->borrowed) { /* a borrowed seat needs no heartbeat: nothing to hold */
        char until[32];
        if (args->json)
            print_lease(lease);
        else
            printf("This machine has borrowed a seat of license %s until %s (lease %s); "
                   "nothing to hold.\n",
                   lease->license_id, when(lease->expires_at, until), lease->lease_id);
    } else {
        code = hold(client, lease, args);
    }
    lc_lease_free(lease);
    return code;
}

static int cmd_borrow(lc_client *client, const cli_args *args)
{
    if (args->days <= 0)
        return fail_usage(args, "--days must be 1 or more.");
    lc_lease *lease = NULL;
    lc_status status = checking_out(client, args, true, &lease);
    if (status != LC_OK)
        return fail(client, status, args, 0);
    char until[32];
    if (args->json)
        print_lease(lease);
    else
        printf("Borrowed a seat of license %s until %s (lease %s).\nThis machine may run the "
               "product offline until then; return the seat early with: %s checkin\n",
               lease->license_id, when(lease->expires_at, until), lease->lease_id, PROG);
    lc_lease_free(lease);
    return EXIT_VALID;
}

static int cmd_checkin(lc_client *client, const cli_args *args)
{
    lc_lease *lease = NULL;
    lc_status status = lc_checkin(client, &lease);
    if (status != LC_OK)
        return fail(client, status, args, 0);
    if (args->json) {
        cJSON *out = cJSON_CreateObject();
        cJSON_AddBoolToObject(out, "checked_in", true);
        cJSON_AddStringToObject(out, "lease_id", lease->lease_id);
        cJSON_AddStringToObject(out, "license_id", lease->license_id);
        emit(out);
    } else {
        printf("Checked in lease %s of license %s; its seat is free.\n", lease->lease_id,
               lease->license_id);
    }
    lc_lease_free(lease);
    return EXIT_VALID;
}

/* -- main ------------------------------------------------------------------------------- */

static const struct {
    const char *name;
    int (*run)(lc_client *, const cli_args *);
} COMMANDS[] = {
    {"activate", cmd_activate},
    {"deactivate", cmd_deactivate},
    {"offline-request", cmd_offline_request},
    {"offline-install", cmd_offline_install},
    {"status", cmd_status},
    {"id", cmd_id},
    {"checkout", cmd_checkout},
    {"borrow", cmd_borrow},
    {"checkin", cmd_checkin},
};

/* The options onto the handle; LC_OK or the first one refused. */
static lc_status configure(lc_client *client, const cli_args *args)
{
    const char *server = args->server ? args->server : env(SERVER_ENV);
    const char *product = args->product ? args->product : env(PRODUCT_ENV);
    lc_status status = LC_OK;
    if (server)
        status = lc_client_set_server(client, server);
    if (status == LC_OK && product)
        status = lc_client_set_product(client, product);
    if (status == LC_OK && args->data_dir)
        status = lc_client_set_data_dir(client, args->data_dir);
    if (status == LC_OK && args->installation_id)
        status = lc_client_set_installation_id(client, args->installation_id);
    if (status == LC_OK && args->jwks)
        status = lc_client_set_jwks_file(client, args->jwks);
    if (status == LC_OK)
        status = lc_client_set_timeout_ms(client, (long)(args->timeout * 1000));
    if (status == LC_OK)
        status = lc_client_set_retries(client, args->retries);
    return status;
}

int main(int argc, char **argv)
{
    cli_args args;
    parse_result parsed = parse_args(argc, argv, &args);
    if (parsed != PARSE_OK)
        return parsed == PARSE_EXIT_OK ? EXIT_VALID : EXIT_USAGE;
    if (!args.command) {
        print_help(stderr);
        return EXIT_USAGE;
    }
    lc_client *client = NULL;
    lc_status status = lc_client_new(&client);
    if (status != LC_OK)
        return fail(NULL, status, &args, 0);
    int code;
    if ((status = configure(client, &args)) != LC_OK) {
        /* as the Python CLI: a bad option value (or an unreadable --jwks) is a usage error */
        code = fail(client, status, &args, EXIT_USAGE);
    } else {
        code = EXIT_USAGE;
        for (size_t i = 0; i < sizeof COMMANDS / sizeof COMMANDS[0]; i++)
            if (strcmp(args.command, COMMANDS[i].name) == 0)
                code = COMMANDS[i].run(client, &args);
    }
    lc_client_free(client);
    return code;
}
