/* A student's solution with two bugs: max_of starts from 0 (wrong for negative
 * numbers) and reverse stops one character early. */
#include <string.h>

#include "solution.h"

int add(int a, int b) { return a + b; }

void reverse(char *s) {
    size_t n = strlen(s);
    for (size_t i = 0; i + 1 < n / 2; i++) {
        char c = s[i];
        s[i] = s[n - 1 - i];
        s[n - 1 - i] = c;
    }
}

int max_of(const int *xs, int n) {
    int best = 0;
    for (int i = 0; i < n; i++) {
        if (xs[i] > best) best = xs[i];
    }
    return best;
}
