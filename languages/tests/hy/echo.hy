(import sys)
(.write sys.stdout (.read sys.stdin))
