/* What license-client-c prints: the Python CLI's texts, JSON documents and exit codes. */
#ifndef LICENSE_CLIENT_CLI_OUTPUT_H
#define LICENSE_CLIENT_CLI_OUTPUT_H

#include <cjson/cJSON.h>
#include <stdint.h>

#include "args.h"
#include "license_client.h"

enum exit_code {
    EXIT_VALID = 0,
    EXIT_INVALID = 1,
    EXIT_USAGE = 2,
    EXIT_NOT_ACTIVATED = 3,
    EXIT_REFUSED = 4,
    EXIT_UNREACHABLE = 5,
    EXIT_STORAGE = 6,
    EXIT_FILE_REFUSED = 7,
};

/* Prints `document` on stdout as the Python CLI does (indent 2, keys sorted) and frees it. */
void emit(cJSON *document);
/* Parses `json` (a library *_to_json() text, freed here) and emits it. */
void emit_text(char *json);

/* Prints the status as `license-client status` does (text, or JSON with --json); the exit
 * code it means: 0 valid, 1 not valid, 3 not activated. */
int show_status(const lc_status_report *report, const cli_args *args);

/* Reports the handle's last error (JSON error document with --json, a line on stderr) and
 * returns its exit code (`code`, or the one `status` means when `code` is 0). */
int fail(lc_client *client, lc_status status, const cli_args *args, int code);
/* Reports an error of the command line itself: exit 2, code usage_error. */
int fail_usage(const cli_args *args, const char *message);

/* "2030-01-15T09:15:00Z", or NULL for LC_NO_TIME; `buffer` holds at least 32 bytes. */
const char *when(int64_t time, char *buffer);

#endif
