for _, arg in ipairs(arg) do
  print(arg)
end
