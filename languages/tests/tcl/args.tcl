foreach arg $argv {
    puts $arg
}
