/* What the exercise asks the student to write. */
#ifndef SOLUTION_H
#define SOLUTION_H

int add(int a, int b);
/* Reverses the NUL-terminated string s in place. */
void reverse(char *s);
/* The largest of the n > 0 numbers in xs. */
int max_of(const int *xs, int n);

#endif
