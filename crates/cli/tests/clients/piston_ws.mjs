// Drives runbox's Piston WebSocket (`/api/v2/connect`) with the `ws` npm package,
// the client Piston's own CLI uses. Usage: node piston_ws.mjs URL (run from the
// directory whose node_modules holds ws). Prints one line per check.
import WebSocket from 'ws';

const base = process.argv[2].replace(/^http/, 'ws') + '/api/v2/connect';

// Opens a session and calls `react(message, socket, log)` on each message; resolves
// with what was seen: the messages (output joined per stream) and the close code.
function session(first, react = () => {}) {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(base);
    const seen = { events: [], stdout: '', stderr: '', close: null, reason: '' };
    const timer = setTimeout(() => reject(new Error('session timed out: ' + JSON.stringify(seen))), 20000);
    socket.on('open', () => { if (first) socket.send(JSON.stringify(first)); });
    socket.on('message', (raw) => {
      const message = JSON.parse(raw.toString());
      if (message.type === 'data') {
        seen[message.stream] += message.data;
      } else {
        seen.events.push(message);
      }
      react(message, socket, seen);
    });
    socket.on('close', (code, reason) => {
      clearTimeout(timer);
      seen.close = code;
      seen.reason = reason.toString();
      resolve(seen);
    });
    socket.on('error', reject);
  });
}

const send = (socket, message) => socket.send(JSON.stringify(message));
const kinds = (seen) => seen.events.map((e) => e.type + (e.stage ? ':' + e.stage : '')).join(' ');
const exitOf = (seen, stage) => seen.events.find((e) => e.type === 'exit' && e.stage === stage);

// An interactive Python program: each answer is typed after its prompt arrives.
const dialogue = `name = input("name? ")
print("hello", name)
age = input("age? ")
print("in ten years", int(age) + 10)
`;
let answered = new Set();
let seen = await session(
  { type: 'init', language: 'python', version: '3', files: [{ content: dialogue }], run_timeout: 10000 },
  (message, socket, seen) => {
    if (seen.stdout.endsWith('name? ') && !answered.has('name')) {
      answered.add('name');
      send(socket, { type: 'data', stream: 'stdin', data: 'Ada\n' });
    }
    if (seen.stdout.endsWith('age? ') && !answered.has('age')) {
      answered.add('age');
      send(socket, { type: 'data', stream: 'stdin', data: '36\n' });
    }
  },
);
console.log('python', kinds(seen), JSON.stringify(seen.stdout), exitOf(seen, 'run').code, seen.close, seen.reason);

// A compiled program: both stages are announced; it answers each line as it comes.
const doubler = `#include <stdio.h>
int main(void) {
  int n;
  while (scanf("%d", &n) == 1) { printf("%d\\n", 2 * n); fflush(stdout); }
  fprintf(stderr, "done\\n");
  return 0;
}
`;
let lines = 0;
seen = await session(
  { type: 'init', language: 'c', version: '*', files: [{ name: 'main.c', content: doubler }], run_timeout: 10000 },
  (message, socket, seen) => {
    if (message.type === 'stage' && message.stage === 'run') {
      send(socket, { type: 'data', stream: 'stdin', data: '21\n' });
    }
    if (message.type === 'data' && message.stream === 'stdout') {
      lines += 1;
      if (lines === 1) send(socket, { type: 'data', stream: 'stdin', data: '50\n' });
      // Piston never closes stdin; runbox's "eof" extension does.
      if (lines === 2) send(socket, { type: 'data', stream: 'stdin', data: '', eof: true });
    }
  },
);
console.log('c', kinds(seen), JSON.stringify(seen.stdout), JSON.stringify(seen.stderr), exitOf(seen, 'run').code, seen.close);

// SIGINT reaches a Python program, which handles it as KeyboardInterrupt. "ready"
// is printed inside the try: the signal may arrive as soon as it is read, before
// the next statement (an uncaught KeyboardInterrupt kills Python by SIGINT).
const sleeper = `import sys, time
try:
    print("ready", flush=True)
    time.sleep(30)
except KeyboardInterrupt:
    print("interrupted", flush=True)
    sys.exit(130)
`;
let started = 0;
seen = await session(
  { type: 'init', language: 'python', version: '*', files: [{ content: sleeper }], run_timeout: 20000 },
  (message, socket, seen) => {
    if (seen.stdout === 'ready\n' && !started) {
      started = Date.now();
      send(socket, { type: 'signal', signal: 'SIGINT' });
    }
  },
);
console.log('sigint', JSON.stringify(seen.stdout), exitOf(seen, 'run').code, Date.now() - started < 5000, seen.close);

// SIGINT to a Bash script that does not trap it: the script is killed by it.
started = 0;
seen = await session(
  { type: 'init', language: 'bash', version: '*', files: [{ content: 'echo ready; sleep 30; echo never' }], run_timeout: 20000 },
  (message, socket, seen) => {
    if (seen.stdout === 'ready\n' && !started) {
      started = Date.now();
      send(socket, { type: 'signal', signal: 'SIGINT' });
    }
  },
);
const bashExit = exitOf(seen, 'run');
console.log('bash', JSON.stringify(seen.stdout), bashExit.code, bashExit.signal, bashExit.status, seen.close);

// Piston's protocol errors and their close codes.
seen = await session({ type: 'data', stream: 'stdin', data: 'x' });
console.log('early data', seen.close, seen.reason);
seen = await session(null);
console.log('no init', seen.close, seen.reason);
const slow = { type: 'init', language: 'bash', version: '*', files: [{ content: 'sleep 10' }], run_timeout: 15000 };
seen = await session(slow, (message, socket) => {
  if (message.type === 'runtime') send(socket, slow);
});
console.log('init twice', seen.close, seen.reason);
seen = await session(slow, (message, socket) => {
  if (message.type === 'runtime') send(socket, { type: 'data', stream: 'stdout', data: 'x' });
});
console.log('stdout write', seen.close, seen.reason);
seen = await session(slow, (message, socket) => {
  if (message.type === 'runtime') send(socket, { type: 'signal', signal: 'SIGNOPE' });
});
console.log('bad signal', seen.close, seen.reason);
seen = await session({ type: 'init', language: 'klingon', version: '*', files: [{ content: 'x' }] });
console.log('unknown', kinds(seen), seen.events[0].message, seen.close, seen.reason);
