# Reads the number of queries, then answers each pair as it comes.
# flush=True: the interactor waits for each answer before it asks again.
n = int(input())
for _ in range(n):
    a, b = map(int, input().split())
    print(a + b, flush=True)
