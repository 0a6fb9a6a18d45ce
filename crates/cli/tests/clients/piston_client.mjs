// Drives runbox with the `piston-client` npm package. Usage:
// node piston_client.mjs URL (with NODE_PATH-free resolution: run it from the
// directory whose node_modules holds piston-client). Prints one line per check.
import piston from 'piston-client';

const client = piston({ server: process.argv[2] });
const runtimes = await client.runtimes();
const names = new Set(runtimes.map((r) => r.language));
console.log('runtimes', ['python', 'c++', 'javascript'].every((n) => names.has(n)));

let r = await client.execute('python', 'import sys\nprint(input(), sys.argv[1:])', { stdin: 'hi', args: ['a', 'b'] });
console.log('python', r.run.stdout.trim(), r.run.code);

r = await client.execute('c++', '#include <iostream>\nint main(){std::cout << 6 * 7; return 0;}');
console.log('c++', r.compile.code, r.run.stdout, r.run.status);

r = await client.execute('javascript', 'console.error("boom"); process.exit(2)');
console.log('javascript', r.run.stderr.trim(), r.run.code, r.run.status);

r = await client.execute('python', 'while True: pass', { runTimeout: 500 });
console.log('timeout', r.run.status, r.run.signal);

r = await client.execute({ language: 'c', version: '*', files: [{ name: 'main.c', content: 'int main(){return x;}' }] });
console.log('compile', r.compile.status, r.compile.code);

r = await client.execute('klingon', 'x');
console.log('unknown', JSON.stringify(r));
