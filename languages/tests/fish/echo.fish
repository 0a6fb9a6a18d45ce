# read --line keeps the whole line, spaces included.
while read --line line
    printf '%s\n' $line
end
