// The same solution in C++: endl flushes each answer.
#include <iostream>

int main() {
    int n;
    std::cin >> n;
    for (int i = 0; i < n; i++) {
        long long a, b;
        std::cin >> a >> b;
        std::cout << a + b << std::endl;
    }
}
