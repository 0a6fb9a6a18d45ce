STDIN.each_line(chomp: false) do |line|
  print line
end
