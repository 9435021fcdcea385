/* The unit tests of the C library, without a License Portal server: `unit_tests GROUP` runs
 * one group (each is a CTest test), `unit_tests` all of them. The group `python` compares
 * with the Python kit and is run on its own (it may be skipped: exit 77). */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "tests.h"

int check_failures = 0;
int check_count = 0;

static const struct {
    const char *name;
    void (*run)(void);
} GROUPS[] = {
    {"encoding", test_encoding},   {"installation", test_installation},
    {"vectors", test_vectors},     {"storage", test_storage},
    {"online", test_online},       {"offline", test_offline},
    {"leases", test_leases},
};

int main(int argc, char **argv)
{
    int ran = 0;
    for (size_t i = 0; i < sizeof GROUPS / sizeof *GROUPS; i++) {
        if (argc > 1 && strcmp(argv[1], GROUPS[i].name) != 0)
            continue;
        GROUPS[i].run();
        ran++;
    }
    if (argc > 1 && strcmp(argv[1], "python") == 0) {
        int skipped = test_python();
        ran = 1;
        if (skipped != 0)
            return skipped;
    }
    if (ran == 0) {
        fprintf(stderr, "no test group %s\n", argv[1]);
        return 2;
    }
    printf("%d checks, %d failed\n", check_count, check_failures);
    return check_failures == 0 ? 0 : 1;
}
