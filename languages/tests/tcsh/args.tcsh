foreach arg ($argv:q)
  printf '%s\n' "$arg"
end
