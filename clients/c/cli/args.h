/* The command line of license-client-c: the Python CLI's commands and options. */
#ifndef LICENSE_CLIENT_CLI_ARGS_H
#define LICENSE_CLIENT_CLI_ARGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#define PROG "license-client-c"

enum { MAX_SECRETS = 16 };

typedef struct cli_args {
    const char *command; /* NULL: none given */
    /* options of every command, before or after it */
    const char *server;
    const char *product;
    const char *data_dir;
    const char *installation_id;
    const char *jwks;
    double timeout;
    int retries;
    bool json;
    /* options and arguments of some commands */
    const char *license_id;
    const char *password;
    const char *machine_name;
    const char *out;
    const char *file;
    bool offline;
    int days;
    /* the values given to --password: never shown in a usage error */
    const char *secrets[MAX_SECRETS];
    size_t secret_count;
} cli_args;

typedef enum parse_result { PARSE_OK, PARSE_EXIT_OK, PARSE_USAGE } parse_result;

/* Fills `args` from argv; PARSE_EXIT_OK after --help or --version (printed), PARSE_USAGE
 * after a usage error (printed to stderr, passwords redacted). */
parse_result parse_args(int argc, char **argv, cli_args *args);

/* The full help text, on `stream`. */
void print_help(FILE *stream);

#endif
