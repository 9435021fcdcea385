/* A few assertion macros: a failed check says where and what, and the run goes on, so one
 * run shows every failure. */
#ifndef CHECK_H
#define CHECK_H

#include <stdio.h>
#include <string.h>

extern int check_failures;
extern int check_count;

#define CHECK(condition)                                                                    \
    do {                                                                                    \
        check_count++;                                                                      \
        if (!(condition)) {                                                                 \
            check_failures++;                                                               \
            fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #condition);  \
        }                                                                                   \
    } while (0)

#define CHECK_STR(actual, expected)                                                         \
    do {                                                                                    \
        const char *check_a = (actual), *check_e = (expected);                              \
        check_count++;                                                                      \
        if (!((check_a == NULL && check_e == NULL) ||                                       \
              (check_a != NULL && check_e != NULL && strcmp(check_a, check_e) == 0))) {     \
            check_failures++;                                                               \
            fprintf(stderr, "%s:%d: %s is \"%s\", expected \"%s\"\n", __FILE__, __LINE__,   \
                    #actual, check_a ? check_a : "(null)", check_e ? check_e : "(null)");   \
        }                                                                                   \
    } while (0)

#define CHECK_STATUS(actual, expected, client)                                              \
    do {                                                                                    \
        lc_status check_s = (actual);                                                       \
        check_count++;                                                                      \
        if (check_s != (expected)) {                                                        \
            check_failures++;                                                               \
            fprintf(stderr, "%s:%d: %s is %s, expected %s (%s: %s)\n", __FILE__, __LINE__,  \
                    #actual, lc_status_name(check_s), lc_status_name(expected),             \
                    lc_client_error_code(client), lc_client_error_message(client));         \
        }                                                                                   \
    } while (0)

#endif
