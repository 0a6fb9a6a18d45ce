/* A student's solution: the functions, and a main of their own to try them. */
#include <stdio.h>
#include <string.h>

#include "solution.h"

int add(int a, int b) { return a + b; }

void reverse(char *s) {
    size_t n = strlen(s);
    for (size_t i = 0; i < n / 2; i++) {
        char c = s[i];
        s[i] = s[n - 1 - i];
        s[n - 1 - i] = c;
    }
}

int max_of(const int *xs, int n) {
    int best = xs[0];
    for (int i = 1; i < n; i++) {
        if (xs[i] > best) best = xs[i];
    }
    return best;
}

int main(void) {
    printf("%d\n", add(1, 2));
    return 0;
}
