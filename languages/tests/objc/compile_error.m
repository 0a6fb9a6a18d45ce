@interface Broken
- (void)method
@end
int main(void) { return undeclared; }
