class Echo {
    static function main() {
        Sys.stdout().writeString(Sys.stdin().readAll().toString());
    }
}
