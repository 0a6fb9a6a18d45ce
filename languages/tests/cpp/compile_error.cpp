#include <iostream>
#include <string>

int main()
{
    std::string s = 42;
    std::cout << s << std::endl;
    return 0;
}
