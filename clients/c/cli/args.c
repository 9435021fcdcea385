/* Parsing license-client-c's command line the way the Python CLI's argparse does: options of
 * every command before or after it, the command's own options after it, unique abbreviations
 * (--pass), --opt=value, and a usage error (exit 2) that never echoes a password. */
#include "args.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "license_client.h"

enum option_id {
    OPT_SERVER = 1000,
    OPT_PRODUCT,
    OPT_DATA_DIR,
    OPT_INSTALLATION_ID,
    OPT_JWKS,
    OPT_TIMEOUT,
    OPT_RETRIES,
    OPT_JSON,
    OPT_VERSION,
    /* the commands' own, one bit each in command_spec */
    OPT_PASSWORD,
    OPT_MACHINE_NAME,
    OPT_OFFLINE,
    OPT_OUT,
    OPT_LICENSE_ID,
    OPT_DAYS,
};

#define BIT(id) (1u << ((id) - OPT_PASSWORD))

static const struct option COMMON_OPTIONS[] = {
    {"server", required_argument, NULL, OPT_SERVER},
    {"product", required_argument, NULL, OPT_PRODUCT},
    {"data-dir", required_argument, NULL, OPT_DATA_DIR},
    {"installation-id", required_argument, NULL, OPT_INSTALLATION_ID},
    {"jwks", required_argument, NULL, OPT_JWKS},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"retries", required_argument, NULL, OPT_RETRIES},
    {"json", no_argument, NULL, OPT_JSON},
    {"help", no_argument, NULL, 'h'},
};

static const struct option COMMAND_OPTIONS[] = {
    {"password", required_argument, NULL, OPT_PASSWORD},
    {"machine-name", required_argument, NULL, OPT_MACHINE_NAME},
    {"offline", no_argument, NULL, OPT_OFFLINE},
    {"out", required_argument, NULL, OPT_OUT},
    {"license-id", required_argument, NULL, OPT_LICENSE_ID},
    {"days", required_argument, NULL, OPT_DAYS},
};

#define COUNT(array) (sizeof(array) / sizeof((array)[0]))

typedef struct command_spec {
    const char *name;
    unsigned options;   /* BIT()s of the command's own options */
    unsigned required;  /* those it cannot do without */
    const char *positional; /* its positional argument's name, or NULL */
    bool positional_required;
} command_spec;

static const command_spec COMMANDS[] = {
    {"activate", BIT(OPT_PASSWORD) | BIT(OPT_MACHINE_NAME), 0, "LICENSE_ID", true},
    {"deactivate", BIT(OPT_PASSWORD) | BIT(OPT_OFFLINE) | BIT(OPT_OUT), 0, NULL, false},
    {"offline-request", BIT(OPT_LICENSE_ID) | BIT(OPT_MACHINE_NAME) | BIT(OPT_OUT),
     BIT(OPT_LICENSE_ID) | BIT(OPT_OUT), NULL, false},
    {"offline-install", 0, 0, "FILE", true},
    {"status", BIT(OPT_OFFLINE), 0, NULL, false},
    {"id", 0, 0, NULL, false},
    {"checkout", BIT(OPT_PASSWORD) | BIT(OPT_MACHINE_NAME), 0, "LICENSE_ID", false},
    {"borrow", BIT(OPT_DAYS) | BIT(OPT_PASSWORD) | BIT(OPT_MACHINE_NAME), BIT(OPT_DAYS),
     "LICENSE_ID", false},
    {"checkin", 0, 0, NULL, false},
};

static const char HELP[] =
    "usage: " PROG " [options] COMMAND [arguments]\n"
    "\n"
    "Activate, deactivate and check this machine's License Portal license.\n"
    "\n"
    "commands:\n"
    "  activate LICENSE_ID [--password P] [--machine-name NAME]\n"
    "                        activate this machine (uses a seat)\n"
    "  deactivate [--password P]\n"
    "                        release this machine's seat\n"
    "  deactivate --offline --out FILE\n"
    "                        no network: delete the offline certificate and write a\n"
    "                        deactivation proof\n"
    "  offline-request --license-id L [--machine-name NAME] --out FILE\n"
    "                        write an activation request file for an offline machine\n"
    "  offline-install FILE  install the portal's activation response file (no network)\n"
    "  status [--offline]    is the license valid here? (online, else offline;\n"
    "                        --offline: the stored certificate only, no network)\n"
    "  id                    print this machine's installation ID\n"
    "  checkout [LICENSE_ID] [--password P] [--machine-name NAME]\n"
    "                        floating license: hold a seat until Ctrl-C or SIGTERM, then\n"
    "                        check it in\n"
    "  borrow --days N [LICENSE_ID] [--password P] [--machine-name NAME]\n"
    "                        floating license: borrow a seat for N days (valid offline,\n"
    "                        no heartbeat)\n"
    "  checkin               floating license: give the seat back (a borrowed one too)\n"
    "\n"
    "options (before or after the command):\n"
    "  --server URL          the License Portal's URL (else $LICENSE_SERVER_URL, else the\n"
    "                        one used to activate)\n"
    "  --product CODE        the product code; the installation ID depends on it (else\n"
    "                        $LICENSE_CLIENT_PRODUCT)\n"
    "  --data-dir DIR        where the activation is stored (else $LICENSE_CLIENT_DATA_DIR,\n"
    "                        else the per-user data folder)\n"
    "  --installation-id ID  use this installation ID (else\n"
    "                        $LICENSE_CLIENT_INSTALLATION_ID, else derived)\n"
    "  --jwks FILE           pinned signing keys (a JWKS file) instead of the server's\n"
    "  --timeout S           seconds per HTTP request (default 10)\n"
    "  --retries N           retries after 503 or network errors (default 3)\n"
    "  --json                print one JSON document\n"
    "  -h, --help            show this help\n"
    "  --version             show the version\n"
    "\n"
    "The password comes from --password, else $LICENSE_CLIENT_PASSWORD, else a prompt (or\n"
    "one line of standard input when it is not a terminal).\n"
    "\n"
    "Exit codes: 0 ok/valid, 1 not valid, 2 usage, 3 not activated, 4 refused by the\n"
    "server, 5 server unreachable, 6 data folder unusable, 7 offline file refused.\n";

void print_help(FILE *stream)
{
    fputs(HELP, stream);
}

/* The values given to --password (or an abbreviation getopt accepts, such as --pass),
 * wherever they stand, as the Python CLI's passwords_in() finds them. */
static void find_secrets(int argc, char **argv, cli_args *args)
{
    static const char option[] = "--password";
    for (int index = 1; index < argc && args->secret_count < MAX_SECRETS; index++) {
        const char *token = argv[index];
        const char *equals = strchr(token, '=');
        size_t length = equals ? (size_t)(equals - token) : strlen(token);
        if (length < 4 || length > strlen(option) || strncmp(option, token, length) != 0)
            continue;
        const char *value = equals ? equals + 1 : (index + 1 < argc ? argv[index + 1] : NULL);
        if (value && *value)
            args->secrets[args->secret_count++] = value;
    }
}

/* `text` with every secret replaced by "[redacted]", printed to stderr. */
static void print_redacted(const cli_args *args, const char *text)
{
    while (*text) {
        size_t matched = 0;
        for (size_t i = 0; i < args->secret_count; i++) {
            size_t length = strlen(args->secrets[i]);
            if (length > matched && strncmp(text, args->secrets[i], length) == 0)
                matched = length;
        }
        if (matched) {
            fputs("[redacted]", stderr);
            text += matched;
        } else {
            fputc(*text++, stderr);
        }
    }
}

static parse_result usage(const cli_args *args, const char *format, ...)
{
    char message[512];
    va_list list;
    va_start(list, format);
    vsnprintf(message, sizeof message, format, list);
    va_end(list);
    fprintf(stderr, "usage: %s [options] COMMAND [arguments]   (%s --help lists them)\n", PROG,
            PROG);
    fprintf(stderr, "%s: error: ", PROG);
    print_redacted(args, message);
    fputc('\n', stderr);
    return PARSE_USAGE;
}

static bool parse_double(const char *text, double *out)
{
    char *end = NULL;
    errno = 0;
    double value = strtod(text, &end);
    if (errno || end == text || *end)
        return false;
    *out = value;
    return true;
}

static bool parse_int(const char *text, int *out)
{
    char *end = NULL;
    errno = 0;
    long value = strtol(text, &end, 10);
    if (errno || end == text || *end || value < -1000000 || value > 1000000)
        return false;
    *out = (int)value;
    return true;
}

/* One option getopt_long found; PARSE_OK or the usage error. */
static parse_result take(cli_args *args, int id, const char *value, unsigned *given)
{
    switch (id) {
    case OPT_SERVER: args->server = value; break;
    case OPT_PRODUCT: args->product = value; break;
    case OPT_DATA_DIR: args->data_dir = value; break;
    case OPT_INSTALLATION_ID: args->installation_id = value; break;
    case OPT_JWKS: args->jwks = value; break;
    case OPT_JSON: args->json = true; break;
    case OPT_TIMEOUT:
        if (!parse_double(value, &args->timeout))
            return usage(args, "argument --timeout: invalid float value: '%s'", value);
        break;
    case OPT_RETRIES:
        if (!parse_int(value, &args->retries))
            return usage(args, "argument --retries: invalid int value: '%s'", value);
        break;
    case OPT_PASSWORD: args->password = value; break;
    case OPT_MACHINE_NAME: args->machine_name = value; break;
    case OPT_OFFLINE: args->offline = true; break;
    case OPT_OUT: args->out = value; break;
    case OPT_LICENSE_ID: args->license_id = value; break;
    case OPT_DAYS:
        if (!parse_int(value, &args->days))
            return usage(args, "argument --days: invalid int value: '%s'", value);
        break;
    default: break;
    }
    if (id >= OPT_PASSWORD)
        *given |= BIT(id);
    return PARSE_OK;
}

/* getopt_long over argv with the common options and the command's own (`spec`, or NULL for
 * the part before the command: stops at the first word that is not an option). */
static parse_result scan(int argc, char **argv, const command_spec *spec, cli_args *args,
                         unsigned *given)
{
    struct option table[COUNT(COMMON_OPTIONS) + COUNT(COMMAND_OPTIONS) + 2];
    size_t count = 0;
    for (size_t i = 0; i < COUNT(COMMON_OPTIONS); i++)
        table[count++] = COMMON_OPTIONS[i];
    if (spec) {
        for (size_t i = 0; i < COUNT(COMMAND_OPTIONS); i++)
            if (spec->options & BIT(COMMAND_OPTIONS[i].val))
                table[count++] = COMMAND_OPTIONS[i];
    } else {
        table[count++] = (struct option){"version", no_argument, NULL, OPT_VERSION};
    }
    table[count] = (struct option){0};

    optind = 0; /* GNU: start afresh */
    opterr = 0;
    int id;
    while ((id = getopt_long(argc, argv, spec ? ":h" : "+:h", table, NULL)) != -1) {
        const char *token = argv[optind - 1];
        if (id == 'h') {
            print_help(stdout);
            return PARSE_EXIT_OK;
        }
        if (id == OPT_VERSION) {
            printf("%s %s\n", PROG, LC_VERSION);
            return PARSE_EXIT_OK;
        }
        if (id == ':')
            return usage(args, "argument %s: expected one argument", token);
        if (id == '?') {
            if (optopt)
                return usage(args, "unrecognized arguments: -%c", optopt);
            return usage(args, "unrecognized arguments: %s", token);
        }
        parse_result result = take(args, id, optarg, given);
        if (result != PARSE_OK)
            return result;
    }
    return PARSE_OK;
}

parse_result parse_args(int argc, char **argv, cli_args *args)
{
    *args = (cli_args){.timeout = 10.0, .retries = 3};
    find_secrets(argc, argv, args);
    unsigned given = 0;
    parse_result result = scan(argc, argv, NULL, args, &given);
    if (result != PARSE_OK || optind >= argc)
        return result;

    int start = optind;
    const command_spec *spec = NULL;
    for (size_t i = 0; i < COUNT(COMMANDS); i++)
        if (strcmp(argv[start], COMMANDS[i].name) == 0)
            spec = &COMMANDS[i];
    if (!spec)
        return usage(args, "argument COMMAND: invalid choice: '%s' (choose from activate, "
                           "deactivate, offline-request, offline-install, status, id, checkout, "
                           "borrow, checkin)", argv[start]);
    args->command = spec->name;

    /* the command's part: argv[start] plays argv[0] */
    result = scan(argc - start, argv + start, spec, args, &given);
    if (result != PARSE_OK)
        return result;
    int rest = start + optind;
    if (rest < argc && spec->positional) {
        if (strcmp(spec->positional, "FILE") == 0)
            args->file = argv[rest];
        else
            args->license_id = argv[rest];
        rest++;
    } else if (spec->positional_required) {
        return usage(args, "the following arguments are required: %s", spec->positional);
    }
    if (rest < argc)
        return usage(args, "unrecognized arguments: %s", argv[rest]);
    for (size_t i = 0; i < COUNT(COMMAND_OPTIONS); i++) {
        const struct option *option = &COMMAND_OPTIONS[i];
        if ((spec->required & BIT(option->val)) && !(given & BIT(option->val)))
            return usage(args, "the following arguments are required: --%s", option->name);
    }
    return PARSE_OK;
}
