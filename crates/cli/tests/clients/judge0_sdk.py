"""Drives runbox with the official Judge0 Python SDK (`judge0` on PyPI).

Usage: judge0_sdk.py URL [X-AUTH-TOKEN]. Prints one line per check; the Rust
test compares them exactly.
"""
import sys

import judge0
from judge0 import LanguageAlias, Submission

url = sys.argv[1]
headers = {"X-Auth-Token": sys.argv[2]} if len(sys.argv) > 2 else {}
client = judge0.Client(url, headers)

programs = [
    (LanguageAlias.PYTHON, 'print("hello from python")'),
    (LanguageAlias.C, '#include <stdio.h>\nint main(void) { puts("hello from c"); return 0; }'),
    (LanguageAlias.CPP, '#include <iostream>\nint main() { std::cout << "hello from c++" << std::endl; }'),
    (LanguageAlias.JAVASCRIPT, 'console.log("hello from javascript")'),
    (LanguageAlias.BASH, 'echo "hello from bash"'),
]
for language, source in programs:
    result = judge0.run(client=client, source_code=source, language=language)
    print(language.name, result.status.name, result.stdout.strip())

# Test cases with expected output: one batch, then polling until all are done.
results = judge0.run(
    client=client,
    source_code="print(int(input()) * 2)",
    language=LanguageAlias.PYTHON,
    test_cases=[("1", "2"), ("21", "42"), ("2", "5")],
)
print("test cases", [r.status.name for r in results])

# Asynchronous: create, then wait (polls GET /submissions/batch or /{token}).
submission = judge0.async_run(client=client, source_code="import time; time.sleep(0.2); print('late')", language=LanguageAlias.PYTHON)
judge0.wait(client=client, submissions=submission)
print("async", submission.status.name, submission.stdout.strip())

# Non-ASCII input and output travel in base64.
result = judge0.run(client=client, source_code="print(input()[::-1])", stdin="été ☃", language=LanguageAlias.PYTHON)
print("base64", result.stdout.strip())

result = judge0.run(client=client, source_code="int main(void) { return missing; }", language=LanguageAlias.C)
print("compile", result.status.name, "missing" in (result.compile_output or ""))

result = judge0.run(client=client, submissions=Submission(source_code="while True: pass", language=LanguageAlias.PYTHON, cpu_time_limit=0.5, cpu_extra_time=0.1))
print("limit", result.status.name, float(result.time) >= 0.5)

result = judge0.run(client=client, source_code="import sys; sys.exit(3)", language=LanguageAlias.PYTHON)
print("exit", result.status.name, result.exit_code)
