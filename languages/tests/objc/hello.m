#import <objc/Object.h>
#include <stdio.h>

@interface Greeter : Object
+ (void)greet;
@end

@implementation Greeter
+ (void)greet { puts("Hello, World!"); }
@end

int main(void) {
    [Greeter greet];
    return 0;
}
