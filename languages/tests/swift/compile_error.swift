let n: Int = "three"
print(n)
