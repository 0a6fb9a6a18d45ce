$stdin.each_line do |line|
  print line
end
