ARGV.each do |arg|
  puts arg
end
