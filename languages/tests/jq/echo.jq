# -R -n: each line of stdin is a string from `inputs`.
inputs
