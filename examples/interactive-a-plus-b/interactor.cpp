// The A+B interactor, in testlib style: it reads the queries from the test's
// input (inf), asks the solution each pair on its stdin, reads each sum from
// the solution's stdout (ouf), and decides. What it writes to tout goes to the
// checker, when the test has an expected output.
#include "testlib.h"
#include <iostream>

using namespace std;

int main(int argc, char *argv[]) {
    setName("A+B interactor: asks each pair, checks each sum");
    registerInteraction(argc, argv);

    int n = inf.readInt();
    // endl flushes: the solution must see each line before it can answer.
    cout << n << endl;
    for (int i = 1; i <= n; i++) {
        long long a = inf.readLong();
        long long b = inf.readLong();
        cout << a << " " << b << endl;
        long long sum = ouf.readLong();
        tout << sum << endl;
        if (sum != a + b)
            quitf(_wa, "query %d: %lld + %lld is %lld, not %lld", i, a, b, a + b, sum);
    }
    quitf(_ok, "%d sums right", n);
}
