class Args {
    static function main() {
        for (arg in Sys.args()) Sys.println(arg);
    }
}
