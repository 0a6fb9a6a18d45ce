// The playground runbox serves at /: an editor, a terminal on the session API
// (GET /api/v1/sessions), and a judge on POST /api/v1/execute. Everything it
// loads comes from the runbox that serves it.
import { EditorView, keymap, lineNumbers, highlightActiveLine, drawSelection } from "@codemirror/view";
import { EditorState, Compartment } from "@codemirror/state";
import { defaultKeymap, history, historyKeymap, indentWithTab } from "@codemirror/commands";
import { syntaxHighlighting, defaultHighlightStyle, indentOnInput, bracketMatching } from "@codemirror/language";
import { setDiagnostics, lintGutter } from "@codemirror/lint";
import { Terminal } from "@xterm/xterm";
import { FitAddon } from "@xterm/addon-fit";
import { languageOf } from "./modes.js";
import { examples } from "./examples.js";
import { compileErrors } from "./diagnostics.js";

const $ = (id) => document.getElementById(id);
const KEY_STORAGE = "runbox.key";

// ---- API access: the key lives in this browser's storage only ----

function apiKey() {
  return localStorage.getItem(KEY_STORAGE) || "";
}

async function api(path, options = {}) {
  const headers = { ...(options.headers || {}) };
  if (apiKey()) headers.Authorization = `Bearer ${apiKey()}`;
  const response = await fetch(path, { ...options, headers });
  if (response.status === 401) {
    askForKey((await response.json().catch(() => ({}))).error?.message);
    throw new Error("an API key is needed");
  }
  return response;
}

function askForKey(why) {
  $("key-area").hidden = false;
  $("key-why").textContent = why || "This runbox asks for an API key.";
  $("key").focus();
}

// ---- the editor ----

const languageSlot = new Compartment();
const editor = new EditorView({
  parent: $("editor"),
  state: EditorState.create({
    doc: examples.python,
    extensions: [
      lineNumbers(),
      history(),
      drawSelection(),
      indentOnInput(),
      bracketMatching(),
      highlightActiveLine(),
      lintGutter(),
      syntaxHighlighting(defaultHighlightStyle, { fallback: true }),
      languageSlot.of([]),
      keymap.of([
        { key: "Mod-Enter", run: () => (run(), true) },
        ...defaultKeymap,
        ...historyKeymap,
        indentWithTab,
      ]),
      EditorView.contentAttributes.of({ "aria-label": "Code" }),
    ],
  }),
});

function setLanguageMode(id) {
  const mode = languageOf(id);
  editor.dispatch({ effects: languageSlot.reconfigure(mode ? mode : []) });
}

// ---- the language and version pickers ----

let catalog = [];

async function loadLanguages() {
  const response = await api("/api/v1/languages");
  const body = await response.json();
  const list = Array.isArray(body) ? body : body.languages || [];
  catalog = list.filter((entry) => entry.installed);
  const ids = [...new Map(catalog.map((entry) => [entry.id, entry.name])).entries()];
  ids.sort((a, b) => a[1].localeCompare(b[1]));
  const picker = $("language");
  picker.replaceChildren(...ids.map(([id, name]) => new Option(name, id)));
  const wanted = localStorage.getItem("runbox.language");
  picker.value = ids.some(([id]) => id === wanted) ? wanted : ids.some(([id]) => id === "python") ? "python" : ids[0]?.[0];
  pickLanguage(false);
}

function pickLanguage(replaceCode = true) {
  const id = $("language").value;
  localStorage.setItem("runbox.language", id);
  const versions = catalog.filter((entry) => entry.id === id && entry.version);
  $("version").replaceChildren(
    ...versions.map((entry) => new Option(`${entry.version}${entry.runtime === "host" ? "" : ` (${entry.runtime})`}`, JSON.stringify([entry.version, entry.runtime]))),
  );
  setLanguageMode(id);
  if (replaceCode && examples[id]) {
    editor.dispatch({ changes: { from: 0, to: editor.state.doc.length, insert: examples[id] } });
  }
}

function chosenVersion() {
  const value = $("version").value;
  if (!value) return {};
  const [version, runtime] = JSON.parse(value);
  return { version, runtime };
}

// ---- the terminal ----

const terminal = new Terminal({ convertEol: false, cursorBlink: true, fontSize: 14, screenReaderMode: false });
const fit = new FitAddon();
terminal.loadAddon(fit);
terminal.open($("terminal"));
fit.fit();
new ResizeObserver(() => fit.fit()).observe($("terminal"));

let session = null;

terminal.onData((data) => {
  if (session?.tty && session.socket.readyState === WebSocket.OPEN) {
    session.socket.send(JSON.stringify({ type: "stdin", data }));
  }
});
terminal.onResize(({ rows, cols }) => {
  if (session?.tty && session.socket.readyState === WebSocket.OPEN) {
    session.socket.send(JSON.stringify({ type: "resize", rows, cols }));
  }
});

// ---- running ----

function status(text, kind = "") {
  const line = $("status");
  line.textContent = text;
  line.dataset.kind = kind;
}

function splitArgs(text) {
  return (text.match(/"[^"]*"|'[^']*'|\S+/g) || []).map((word) => word.replace(/^(["'])(.*)\1$/, "$2"));
}

function run() {
  if (session) session.socket.close();
  showTab("terminal");
  const stdin = $("stdin").value;
  const tty = $("interactive").checked && stdin === "";
  terminal.reset();
  editor.dispatch(setDiagnostics(editor.state, []));
  $("compile-errors").replaceChildren();
  $("images").replaceChildren();
  status("Starting…", "running");
  const protocols = ["runbox.v1"];
  if (apiKey()) protocols.push(`runbox.key.${apiKey()}`);
  const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/api/v1/sessions`;
  const socket = new WebSocket(url, protocols);
  const current = { socket, tty, compile: "" };
  session = current;
  socket.onopen = () => {
    const start = {
      type: "start",
      language: $("language").value,
      ...chosenVersion(),
      source: editor.state.doc.toString(),
      args: splitArgs($("args").value),
      tty,
      rows: terminal.rows,
      cols: terminal.cols,
    };
    if (!tty) start.stdin = stdin;
    socket.send(JSON.stringify(start));
    if (!tty) socket.send(JSON.stringify({ type: "stdin", eof: true }));
  };
  socket.onmessage = (event) => {
    const message = JSON.parse(event.data);
    switch (message.type) {
      case "started":
        status("Running…", "running");
        if (tty) terminal.focus();
        break;
      case "stage":
        if (message.stage === "compile") status("Compiling…", "running");
        else status("Running…", "running");
        break;
      case "output": {
        const text = tty && message.stage === "run" ? message.data : message.data.replace(/\r?\n/g, "\r\n");
        terminal.write(message.stream === "stderr" ? `\x1b[31m${text}\x1b[0m` : text);
        if (message.stage === "compile") current.compile += message.data;
        break;
      }
      case "exit":
        if (message.stage === "compile" && message.status !== "ok") showCompileErrors(current.compile);
        break;
      case "result":
        showResult(message.result);
        break;
      case "error":
        status(`Error: ${message.message}`, "error");
        break;
    }
  };
  socket.onclose = (event) => {
    if (event.code === 1006 && session === current) status("The connection to runbox was lost.", "error");
    if (session === current) session = null;
  };
}

function showCompileErrors(text) {
  const errors = compileErrors(text, editor.state.doc.lines);
  const list = $("compile-errors");
  list.replaceChildren(
    ...errors.map((error) => {
      const item = document.createElement("li");
      const jump = document.createElement("button");
      jump.textContent = `Line ${error.line}`;
      jump.className = "jump";
      jump.onclick = () => {
        const line = editor.state.doc.line(error.line);
        editor.dispatch({ selection: { anchor: line.from }, scrollIntoView: true });
        editor.focus();
      };
      item.append(jump, `: ${error.message}`);
      return item;
    }),
  );
  const diagnostics = errors.map((error) => {
    const line = editor.state.doc.line(error.line);
    return { from: line.from, to: Math.max(line.to, line.from), severity: error.severity, message: error.message };
  });
  editor.dispatch(setDiagnostics(editor.state, diagnostics));
}

const STATUS_WORDS = {
  ok: "OK",
  accepted: "Accepted",
  wrong_answer: "Wrong answer",
  presentation_error: "Presentation error",
  compile_error: "Compile error",
  runtime_error: "Runtime error",
  time_limit_exceeded: "Time limit exceeded",
  memory_limit_exceeded: "Memory limit exceeded",
  output_limit_exceeded: "Output limit exceeded",
  internal_error: "Internal error",
};

function figures(stage) {
  if (!stage) return "";
  const parts = [];
  if (stage.exit_code !== null && stage.exit_code !== undefined) parts.push(`exit ${stage.exit_code}`);
  if (stage.signal) parts.push(stage.signal);
  parts.push(`${stage.wall_time_ms.toFixed(0)} ms`, `CPU ${stage.cpu_time_ms.toFixed(0)} ms`, `${(stage.memory_kb / 1024).toFixed(1)} MiB`);
  return parts.join(" · ");
}

function showResult(result) {
  const stage = result.run || result.compile;
  const word = STATUS_WORDS[result.status] || result.status;
  status(`${word}${stage ? ` · ${figures(stage)}` : ""}`, result.status === "ok" || result.status === "accepted" ? "ok" : "error");
  showImages(result);
}

// Images a program wrote, when the result carries its files.
const IMAGE_TYPES = { png: "image/png", jpg: "image/jpeg", jpeg: "image/jpeg", svg: "image/svg+xml", gif: "image/gif" };

function showImages(result) {
  const files = result.files || result.run?.files || [];
  const images = files
    .map((file) => ({ file, type: IMAGE_TYPES[(file.name || "").split(".").pop().toLowerCase()] }))
    .filter(({ file, type }) => type && typeof file.content === "string");
  $("images").replaceChildren(
    ...images.map(({ file, type }) => {
      const figure = document.createElement("figure");
      const image = document.createElement("img");
      const base64 = file.encoding === "base64" ? file.content : btoa(unescape(encodeURIComponent(file.content)));
      image.src = `data:${type};base64,${base64}`;
      image.alt = file.name;
      const caption = document.createElement("figcaption");
      caption.textContent = file.name;
      figure.append(image, caption);
      return figure;
    }),
  );
}

// ---- tests ----

function addTest(input = "", expected = "") {
  const list = $("tests");
  const n = list.children.length + 1;
  const item = document.createElement("li");
  item.className = "test";
  item.innerHTML = `
    <label>Input ${n}<textarea class="test-input" rows="2"></textarea></label>
    <label>Expected output ${n}<textarea class="test-expected" rows="2"></textarea></label>
    <output class="verdict" aria-live="polite"></output>`;
  item.querySelector(".test-input").value = input;
  item.querySelector(".test-expected").value = expected;
  list.append(item);
}

async function judge() {
  const items = [...$("tests").children];
  if (items.length === 0) return;
  status("Judging…", "running");
  for (const item of items) item.querySelector(".verdict").textContent = "";
  const tests = items.map((item, i) => ({
    name: `Test ${i + 1}`,
    stdin: item.querySelector(".test-input").value,
    expected_output: item.querySelector(".test-expected").value,
  }));
  const request = { language: $("language").value, ...chosenVersion(), source: editor.state.doc.toString(), args: splitArgs($("args").value), tests };
  let result;
  try {
    const response = await api("/api/v1/execute", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(request),
    });
    result = await response.json();
    if (!response.ok) return status(`Error: ${result.error?.message || response.status}`, "error");
  } catch (error) {
    return status(`Error: ${error.message}`, "error");
  }
  if (result.status === "compile_error") {
    showCompileErrors(`${result.compile?.stdout || ""}${result.compile?.stderr || ""}`);
  }
  (result.tests || []).forEach((test, i) => {
    const verdict = items[i]?.querySelector(".verdict");
    if (!verdict) return;
    verdict.textContent = `${test.name}: ${STATUS_WORDS[test.verdict] || test.verdict} · ${test.wall_time_ms.toFixed(0)} ms`;
    verdict.dataset.kind = test.verdict === "accepted" ? "ok" : "error";
  });
  const passed = (result.tests || []).filter((test) => test.verdict === "accepted").length;
  status(`${STATUS_WORDS[result.status] || result.status} · ${passed}/${tests.length} tests passed`, result.status === "accepted" ? "ok" : "error");
}

// ---- tabs (WAI-ARIA tabs: arrow keys move between them) ----

const TABS = ["terminal", "input", "tests"];

function showTab(name) {
  for (const tab of TABS) {
    const selected = tab === name;
    $(`tab-${tab}`).setAttribute("aria-selected", String(selected));
    $(`tab-${tab}`).tabIndex = selected ? 0 : -1;
    $(`panel-${tab}`).hidden = !selected;
  }
  if (name === "terminal") fit.fit();
}

for (const tab of TABS) {
  const button = $(`tab-${tab}`);
  button.onclick = () => showTab(tab);
  button.onkeydown = (event) => {
    const step = { ArrowRight: 1, ArrowLeft: -1 }[event.key];
    if (!step) return;
    const next = TABS[(TABS.indexOf(tab) + step + TABS.length) % TABS.length];
    showTab(next);
    $(`tab-${next}`).focus();
  };
}

// ---- wiring ----

$("run").onclick = run;
$("language").onchange = () => pickLanguage(true);
$("judge").onclick = judge;
$("add-test").onclick = () => addTest();
$("key-area").onsubmit = (event) => {
  event.preventDefault();
  localStorage.setItem(KEY_STORAGE, $("key").value.trim());
  $("key-area").hidden = true;
  loadLanguages().catch(() => {});
};
document.addEventListener("keydown", (event) => {
  // The editor handles its own Ctrl+Enter (and marks it handled).
  if ((event.ctrlKey || event.metaKey) && event.key === "Enter" && !event.defaultPrevented) {
    event.preventDefault();
    run();
  }
});
addTest();
addTest();
loadLanguages().catch((error) => status(`Error: ${error.message}`, "error"));
