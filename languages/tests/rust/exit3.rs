use std::process;

fn main() {
    process::exit(3);
}
