import std/os

for arg in commandLineParams():
  echo arg
