#include <stdio.h>

int main(void)
{
    printf("%d\n", answer);   /* 'answer' is never declared */
    return 0;
}
