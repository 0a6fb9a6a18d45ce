/* The test driver: one test function per test case, chosen by argv[1]. A failed
 * assert() aborts the program (SIGABRT), so that test is a runtime_error under
 * its own name. The student's main, if any, is renamed to student_main. */
#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "solution.h"

static void test_add(void) {
    assert(add(2, 3) == 5);
    assert(add(-2, -3) == -5);
}

static void test_reverse(void) {
    char word[] = "runbox";
    reverse(word);
    assert(strcmp(word, "xobnur") == 0);
}

static void test_reverse_empty(void) {
    char empty[] = "";
    reverse(empty);
    assert(strcmp(empty, "") == 0);
}

static void test_max_of(void) {
    int xs[] = {3, -1, 7, 7, 2};
    assert(max_of(xs, 5) == 7);
    int negative[] = {-5, -2, -9};
    assert(max_of(negative, 3) == -2);
}

static const struct {
    const char *name;
    void (*run)(void);
} TESTS[] = {
    {"test_add", test_add},
    {"test_reverse", test_reverse},
    {"test_reverse_empty", test_reverse_empty},
    {"test_max_of", test_max_of},
};

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s TEST\n", argv[0]);
        return 2;
    }
    for (size_t i = 0; i < sizeof TESTS / sizeof TESTS[0]; i++) {
        if (strcmp(argv[1], TESTS[i].name) == 0) {
            TESTS[i].run();
            return 0;
        }
    }
    fprintf(stderr, "no test named %s\n", argv[1]);
    return 2;
}
