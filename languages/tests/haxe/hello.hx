class Hello {
    static function main() {
        Sys.println("Hello, World!");
    }
}
