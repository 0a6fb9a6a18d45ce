for line in io.lines(nil, "L") do
  io.write(line)
end
