class Exit3 {
    static function main() {
        Sys.exit(3);
    }
}
