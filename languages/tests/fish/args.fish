for arg in $argv
    printf '%s\n' $arg
end
