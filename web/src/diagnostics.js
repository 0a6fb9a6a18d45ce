// Compiler messages -> the lines of the source they are about. Understands the
// shapes of gcc/clang/go/javac/fpc (`file:LINE:COL: error: ...`), rustc
// (`error: ...` then `--> file:LINE:COL`) and Python/Node tracebacks
// (`File "...", line LINE`).

const FILE_LINE = /^[^\s:][^:\n]*:(\d+)(?::(\d+))?:\s*(?:(fatal error|error|warning|note)\s*:)?\s*(.*)$/;
const RUST_ARROW = /^\s*-->\s*[^:\n]+:(\d+):(\d+)/;
const RUST_HEAD = /^(error|warning)(?:\[\w+\])?:\s*(.*)$/;
const TRACEBACK = /File "[^"]*", line (\d+)/;

/** The errors in `text`, each {line, severity, message}, on lines 1..lines. */
export function compileErrors(text, lines) {
  const found = [];
  let pending = null;
  for (const raw of text.split("\n")) {
    const line = raw.replace(/\x1b\[[0-9;]*m/g, "");
    let match;
    if ((match = RUST_HEAD.exec(line))) {
      pending = { severity: match[1], message: match[2] };
    } else if ((match = RUST_ARROW.exec(line)) && pending) {
      found.push({ line: Number(match[1]), ...pending });
      pending = null;
    } else if ((match = FILE_LINE.exec(line)) && (match[3] || /error/i.test(match[4]))) {
      if (match[3] === "note") continue;
      const severity = match[3] === "warning" ? "warning" : "error";
      found.push({ line: Number(match[1]), severity, message: match[4] || line });
    } else if ((match = TRACEBACK.exec(line))) {
      found.push({ line: Number(match[1]), severity: "error", message: line.trim() });
    }
  }
  return found.filter((error) => error.line >= 1 && error.line <= lines);
}
