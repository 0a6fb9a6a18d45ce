//! Every shell example of README.md and docs/*.md runs as written against a real
//! `runbox serve` with the default settings, and prints what the documentation
//! says it prints. The convention (docs/contributing.md):
//!
//! - A fenced block whose info string is `sh` or `bash` is an example: it runs
//!   with `bash -euo pipefail` in a fresh directory holding a copy of
//!   `examples/`, with `runbox` on the PATH, and `127.0.0.1:2358` pointing at the
//!   test's server. Every HTTP error fails it (curl runs with `--fail-with-body`).
//! - `<!-- not tested: REASON -->` on the line before a block skips it.
//! - A block with the info string `json output` or `text output` right after an
//!   example is what its stdout must show: JSON fields are compared where they
//!   do not vary between runs (ids, times, memory and versions only by type),
//!   text line by line with numbers masked and `…` standing for any text.
//! - Only the core languages may be used: the test checks what the server ran
//!   and the languages `runbox run`/`judge` examples name.

mod support;

use std::collections::BTreeSet;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{TestServer, runbox_binary};

/// The port examples are written for.
const DOCUMENTED_ADDRESS: &str = "127.0.0.1:2358";
/// How long one example may take.
const EXAMPLE_TIMEOUT: Duration = Duration::from_secs(180);

/// One fenced shell block.
#[derive(Debug)]
struct Example {
    file: PathBuf,
    line: usize,
    script: String,
    expected: Option<Expected>,
    skipped: Option<String>,
}

/// What an example's stdout must show.
#[derive(Debug)]
enum Expected {
    Json(Value),
    Text(String),
}

/// A fenced block: its info string, first line number (1-based) and body.
struct Fence {
    info: String,
    line: usize,
    body: String,
    /// The non-blank line just before the opening fence.
    before: String,
    /// Whether only blank lines separate it from the block before it.
    follows_closely: bool,
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every fenced block of a Markdown text, in order (fences may be indented, as in
/// lists; the indentation is removed from the body).
fn fences(text: &str) -> Vec<Fence> {
    let lines: Vec<&str> = text.lines().collect();
    let mut fences: Vec<Fence> = Vec::new();
    let mut last_close: Option<usize> = None;
    let mut i = 0;
    while i < lines.len() {
        let trimmed = lines[i].trim_start();
        // A fence is three or more backticks; it closes with at least as many.
        let ticks = trimmed.chars().take_while(|&c| c == '`').count();
        if ticks >= 3 {
            let info = &trimmed[ticks..];
            let indent = lines[i].len() - trimmed.len();
            let before = lines[..i]
                .iter()
                .rev()
                .find(|l| !l.trim().is_empty())
                .map_or(String::new(), |l| l.trim().to_string());
            let start = i + 1;
            let mut body = String::new();
            i += 1;
            while i < lines.len() && !closes(lines[i], ticks) {
                let line = lines[i];
                let cut = line.len() - line.trim_start().len();
                body.push_str(&line[cut.min(indent)..]);
                body.push('\n');
                i += 1;
            }
            let follows_closely = last_close.is_some_and(|close| {
                lines[close + 1..start - 1]
                    .iter()
                    .all(|l| l.trim().is_empty())
            });
            fences.push(Fence {
                info: info.trim().to_string(),
                line: start,
                body,
                before,
                follows_closely,
            });
            last_close = Some(i);
        }
        i += 1;
    }
    fences
}

/// Whether `line` closes a fence opened with `ticks` backticks.
fn closes(line: &str, ticks: usize) -> bool {
    let trimmed = line.trim();
    trimmed.len() >= ticks && trimmed.chars().all(|c| c == '`')
}

/// The examples of one file.
fn examples_of(file: &Path) -> Vec<Example> {
    let text = std::fs::read_to_string(file).expect("a documentation file");
    let fences = fences(&text);
    let mut examples = Vec::new();
    for (n, fence) in fences.iter().enumerate() {
        let language = fence.info.split_whitespace().next().unwrap_or("");
        if !matches!(language, "sh" | "bash") {
            continue;
        }
        let skipped = fence
            .before
            .strip_prefix("<!-- not tested:")
            .and_then(|rest| rest.strip_suffix("-->"))
            .map(|reason| reason.trim().to_string());
        if let Some(reason) = &skipped {
            assert!(
                !reason.is_empty(),
                "{}:{}: `not tested` needs a reason",
                file.display(),
                fence.line
            );
        }
        let expected = fences
            .get(n + 1)
            .filter(|next| next.follows_closely)
            .and_then(|next| match next.info.as_str() {
                "json output" => Some(Expected::Json(
                    serde_json::from_str(&next.body).unwrap_or_else(|e| {
                        panic!("{}:{}: output is not JSON: {e}", file.display(), next.line)
                    }),
                )),
                "text output" => Some(Expected::Text(next.body.clone())),
                _ => None,
            });
        examples.push(Example {
            file: file.to_path_buf(),
            line: fence.line,
            script: fence.body.clone(),
            expected,
            skipped,
        });
    }
    examples
}

/// README.md and every docs/*.md.
fn documentation() -> Vec<PathBuf> {
    let root = repo_root();
    let mut files = vec![root.join("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .expect("docs/")
        .map(|entry| entry.expect("an entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    files.extend(docs);
    files
}

/// A field whose value differs between runs or hosts: compared by type only.
fn varies(key: &str) -> bool {
    const KEYS: [&str; 12] = [
        "id",
        "token",
        "version",
        "uptime_seconds",
        "uptime",
        "timestamp",
        "memory",
        "time",
        "executionTime",
        "compilation_time",
        "run_time",
        "last_heartbeat",
    ];
    KEYS.contains(&key)
        || ["_ms", "_kb", "_time", "_at", "_bytes"]
            .iter()
            .any(|suffix| key.ends_with(suffix))
}

/// Where `actual` differs from `expected` (every expected field must be there).
fn json_differences(expected: &Value, actual: &Value, path: &str, out: &mut Vec<String>) {
    match (expected, actual) {
        (Value::Object(want), Value::Object(got)) => {
            for (key, value) in want {
                let at = format!("{path}.{key}");
                match got.get(key) {
                    None => out.push(format!("{at}: missing")),
                    Some(found) if varies(key) => {
                        if std::mem::discriminant(value) != std::mem::discriminant(found) {
                            out.push(format!("{at}: {value} documented, {found} returned"));
                        }
                    }
                    Some(found) => json_differences(value, found, &at, out),
                }
            }
        }
        (Value::Array(want), Value::Array(got)) if want.len() == got.len() => {
            for (i, (w, g)) in want.iter().zip(got).enumerate() {
                json_differences(w, g, &format!("{path}[{i}]"), out);
            }
        }
        _ if expected == actual => {}
        _ => out.push(format!("{path}: {expected} documented, {actual} returned")),
    }
}

/// `text` with every number (`12`, `0.6`, `3.11.2`) replaced by `N`.
fn mask_numbers(text: &str) -> String {
    let number = regex::Regex::new(r"\d+(\.\d+)*").expect("a regex");
    number.replace_all(text, "N").into_owned()
}

/// A documented output line as a pattern for a printed line (numbers masked in
/// both): `…` stands for any text.
fn line_pattern(line: &str) -> regex::Regex {
    let parts: Vec<String> = mask_numbers(line).split('…').map(regex::escape).collect();
    regex::Regex::new(&format!("^{}$", parts.join(".*"))).expect("a pattern")
}

/// A catalog entry's id, names and extensions, and whether it is a core language.
struct Language {
    id: String,
    names: Vec<String>,
    extensions: Vec<String>,
    core: bool,
}

/// The host entries of the catalog (languages/*.toml without a runtime).
fn catalog() -> Vec<Language> {
    let mut languages = Vec::new();
    for entry in std::fs::read_dir(repo_root().join("languages")).expect("languages/") {
        let path = entry.expect("an entry").path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        let table: toml::Table = toml::from_str(&std::fs::read_to_string(&path).expect("a file"))
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        if table.contains_key("runtime") {
            continue;
        }
        let words = |key: &str| -> Vec<String> {
            table
                .get(key)
                .and_then(|v| v.as_array())
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default()
        };
        let id = table["id"].as_str().expect("an id").to_string();
        let mut names = words("aliases");
        names.push(id.clone());
        languages.push(Language {
            id,
            names,
            extensions: words("extensions"),
            core: table.get("core").and_then(|v| v.as_bool()) == Some(true),
        });
    }
    languages
}

/// The languages a script's `runbox run` and `runbox judge` commands name (by
/// `--language`/`-l`, else by the first file's extension).
fn cli_languages(script: &str, catalog: &[Language]) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for line in script.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        for (i, pair) in words.windows(2).enumerate() {
            if pair[0] != "runbox" || !matches!(pair[1], "run" | "judge") {
                continue;
            }
            let rest = &words[i + 2..];
            let named = rest
                .windows(2)
                .find(|w| matches!(w[0], "--language" | "-l"))
                .map(|w| w[1].to_string());
            let by_extension = rest
                .iter()
                .find(|w| !w.starts_with('-'))
                .and_then(|file| file.rsplit_once('.'))
                .map(|(_, ext)| ext.to_string());
            let language = match (named, by_extension) {
                (Some(name), _) => catalog
                    .iter()
                    .find(|l| l.names.contains(&name))
                    .map(|l| l.id.clone()),
                (None, Some(ext)) => catalog
                    .iter()
                    .find(|l| l.extensions.contains(&ext))
                    .map(|l| l.id.clone()),
                (None, None) => None,
            };
            found.extend(language);
        }
    }
    found
}

/// Runs `script` in `dir`; its exit success, stdout and stderr.
fn run_script(script: &str, dir: &Path, env: &[(&str, String)]) -> (bool, String, String) {
    let mut command = Command::new("bash");
    command
        .args(["-euo", "pipefail", "-c", script])
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env_remove("RUNBOX_CONFIG")
        .process_group(0);
    for (key, value) in env {
        command.env(key, value);
    }
    let mut child = command.spawn().expect("bash starts");
    let mut stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    let out = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    });
    let err = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let deadline = Instant::now() + EXAMPLE_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break Some(status);
        }
        if Instant::now() > deadline {
            // The whole process group: the example and whatever it started.
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", child.id())])
                .status();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stdout = out.join().expect("stdout reader");
    let mut stderr = err.join().expect("stderr reader");
    if status.is_none() {
        stderr.push_str(&format!("\n(killed after {EXAMPLE_TIMEOUT:?})"));
    }
    (status.is_some_and(|s| s.success()), stdout, stderr)
}

/// What is wrong with an example's run (empty when nothing).
fn check_output(expected: &Option<Expected>, stdout: &str) -> Vec<String> {
    match expected {
        None => Vec::new(),
        Some(Expected::Json(want)) => match serde_json::from_str::<Value>(stdout.trim()) {
            Ok(got) => {
                let mut differences = Vec::new();
                json_differences(want, &got, "", &mut differences);
                differences
            }
            Err(e) => vec![format!("stdout is not one JSON value ({e})")],
        },
        Some(Expected::Text(want)) => {
            let got: Vec<String> = stdout.lines().map(mask_numbers).collect();
            want.lines()
                .filter(|line| !line.trim().is_empty())
                .filter(|line| !got.iter().any(|g| line_pattern(line).is_match(g)))
                .map(|line| format!("no line `{line}`"))
                .collect()
        }
    }
}

#[test]
fn every_documented_shell_example_runs_as_written() {
    let catalog = catalog();
    let core: BTreeSet<String> = catalog
        .iter()
        .filter(|l| l.core)
        .map(|l| l.id.clone())
        .collect();
    let examples: Vec<Example> = documentation()
        .iter()
        .flat_map(|f| examples_of(f))
        .collect();
    assert!(
        examples.iter().filter(|e| e.skipped.is_none()).count() >= 10,
        "the documentation should hold runnable examples: {examples:#?}"
    );

    let server = TestServer::start();
    let address = server.url.trim_start_matches("http://").to_string();
    let scratch = tempfile::tempdir().expect("a directory");
    // curl fails on any HTTP error, and shows why.
    let curl_home = scratch.path().join("curl");
    std::fs::create_dir_all(&curl_home).expect("a directory");
    std::fs::write(
        curl_home.join(".curlrc"),
        "fail-with-body\nshow-error\nmax-time = 170\n",
    )
    .expect("a .curlrc");
    let bin_dir = Path::new(runbox_binary())
        .parent()
        .expect("the binary's directory")
        .to_path_buf();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );

    let mut failures = Vec::new();
    let mut ran = 0;
    for (n, example) in examples.iter().enumerate() {
        let place = format!(
            "{}:{}",
            example
                .file
                .strip_prefix(repo_root())
                .unwrap_or(&example.file)
                .display(),
            example.line
        );
        if let Some(reason) = &example.skipped {
            eprintln!("skipped {place}: {reason}");
            continue;
        }
        let not_core: Vec<String> = cli_languages(&example.script, &catalog)
            .into_iter()
            .filter(|id| !core.contains(id))
            .collect();
        if !not_core.is_empty() {
            failures.push(format!(
                "{place}: uses {not_core:?}, not a core language (scripts/install-languages.sh --core)"
            ));
            continue;
        }
        // A fresh directory per example, with the repository's examples.
        let dir = scratch.path().join(format!("example-{n}"));
        std::fs::create_dir_all(&dir).expect("a directory");
        let copied = Command::new("cp")
            .arg("-r")
            .arg(repo_root().join("examples"))
            .arg(&dir)
            .status()
            .expect("cp runs");
        assert!(copied.success());
        let script = example.script.replace(DOCUMENTED_ADDRESS, &address);
        let started = Instant::now();
        let (ok, stdout, stderr) = run_script(
            &script,
            &dir,
            &[
                ("PATH", path.clone()),
                ("CURL_HOME", curl_home.display().to_string()),
                // Commands that open a store use a scratch one, never the host's.
                (
                    "RUNBOX_DATA_DIR",
                    scratch.path().join("data").display().to_string(),
                ),
            ],
        );
        ran += 1;
        eprintln!("ran {place} in {:.1} s", started.elapsed().as_secs_f64());
        let mut problems = Vec::new();
        if !ok {
            problems.push("it failed".to_string());
        }
        problems.extend(check_output(&example.expected, &stdout));
        if !problems.is_empty() {
            failures.push(format!(
                "{place}: {}\n--- script\n{}--- stdout\n{stdout}\n--- stderr\n{stderr}",
                problems.join("; "),
                example.script
            ));
        }
    }

    // What the server ran: only core languages, and never a failure of the host.
    let mut page = 1;
    loop {
        let listing = server.get_expect(
            &format!("/api/v1/submissions?page={page}&per_page=100"),
            None,
            200,
        );
        let items = listing["submissions"].as_array().expect("submissions");
        for item in items {
            let language = item["language"].as_str().unwrap_or_default();
            if !core.contains(language) && language != "multifile" {
                failures.push(format!(
                    "an example ran {language}, not a core language: {item}"
                ));
            }
            if item["status"] == "internal_error" {
                failures.push(format!("an example's run failed on the host: {item}"));
            }
        }
        if items.len() < 100 {
            break;
        }
        page += 1;
    }
    let log = server.log();
    server.stop();
    assert!(
        failures.is_empty(),
        "{} of {ran} examples failed:\n\n{}\n\nserver log (tail):\n{}",
        failures.len(),
        failures.join("\n\n"),
        log.lines()
            .rev()
            .take(40)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn the_convention_reads_fences_skips_and_outputs() {
    let dir = tempfile::tempdir().expect("a directory");
    let file = dir.path().join("doc.md");
    std::fs::write(
        &file,
        "text\n\n```sh\necho '{\"a\": 1, \"id\": \"x\"}'\n```\n```json output\n{\"a\": 1, \"id\": \"y\"}\n```\n\n<!-- not tested: needs PostgreSQL -->\n```sh\nrunbox worker\n```\n\n- a list\n  ```bash\n  echo hi\n  ```\n```toml\nx = 1\n```\n````markdown\n```sh\nnot an example\n```\n````\n",
    )
    .expect("a file");
    let examples = examples_of(&file);
    assert_eq!(examples.len(), 3, "{examples:#?}");
    assert!(matches!(examples[0].expected, Some(Expected::Json(_))));
    assert!(check_output(&examples[0].expected, "{\"a\": 1, \"id\": \"z\", \"b\": 2}").is_empty());
    assert_eq!(
        check_output(&examples[0].expected, "{\"a\": 2, \"id\": \"z\"}"),
        [".a: 1 documented, 2 returned"]
    );
    assert_eq!(examples[1].skipped.as_deref(), Some("needs PostgreSQL"));
    assert_eq!(examples[2].script, "echo hi\n");
    let headings = anchors(
        "# Title\n## Result contract (shared by CLI `--json` and the native API)\n```sh\n# not a heading\n```\n",
    );
    assert_eq!(
        headings.into_iter().collect::<Vec<_>>(),
        [
            "result-contract-shared-by-cli---json-and-the-native-api",
            "title"
        ]
    );
    assert!(examples[2].expected.is_none());
    let text = Some(Expected::Text(
        "runbox: c 12.2.0 · ok · cpu 0.6 ms\nid …\n".into(),
    ));
    assert!(
        check_output(
            &text,
            "hello\nrunbox: c 13.1.0 · ok · cpu 1.25 ms\nid abc\n"
        )
        .is_empty()
    );
    assert_eq!(
        check_output(&text, "runbox: c 13.1.0 · runtime_error · cpu 1 ms\nid x\n").len(),
        1
    );
}

#[test]
fn runbox_run_examples_are_checked_for_their_language() {
    let catalog = catalog();
    let found = cli_languages(
        "printf 'puts 1' > a.rb && runbox run a.rb\nrunbox run --language py x\nrunbox judge sol.cpp --tests t",
        &catalog,
    );
    assert_eq!(
        found.into_iter().collect::<Vec<_>>(),
        ["cpp", "python", "ruby"]
    );
}

/// Documentation files other branches add (linked from the README already).
const WRITTEN_ELSEWHERE: [&str; 3] = ["docs/sessions.md", "docs/playground.md", "docs/deploy.md"];

#[test]
fn every_relative_link_of_the_documentation_stays_in_the_repository_and_exists() {
    let root = repo_root().canonicalize().expect("the repository");
    let link = regex::Regex::new(r"\]\(([^)\s]+)\)").expect("a regex");
    let mut broken = Vec::new();
    for file in documentation() {
        let text = std::fs::read_to_string(&file).expect("a documentation file");
        let prose = prose(&text);
        for capture in link.captures_iter(&prose) {
            let target = &capture[1];
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            let (path, anchor) = target.split_once('#').unwrap_or((target, ""));
            let resolved = if path.is_empty() {
                file.clone()
            } else {
                file.parent().expect("a directory").join(path)
            };
            let Some(normal) = normalize(&resolved) else {
                broken.push(format!(
                    "{}: {target} leaves the filesystem",
                    file.display()
                ));
                continue;
            };
            if !normal.starts_with(&root) {
                broken.push(format!(
                    "{}: {target} points outside the repository",
                    file.display()
                ));
                continue;
            }
            let relative = normal
                .strip_prefix(&root)
                .expect("inside")
                .to_string_lossy()
                .into_owned();
            if !normal.exists() {
                if !WRITTEN_ELSEWHERE.contains(&relative.as_str()) {
                    broken.push(format!("{}: {target} does not exist", file.display()));
                }
                continue;
            }
            if !anchor.is_empty() && relative.ends_with(".md") {
                let headings = anchors(&std::fs::read_to_string(&normal).expect("a file"));
                if !headings.contains(anchor) {
                    broken.push(format!("{}: {target}: no such heading", file.display()));
                }
            }
        }
    }
    assert!(broken.is_empty(), "{}", broken.join("\n"));
}

/// `text` without its fenced blocks: links and headings in code are neither.
fn prose(text: &str) -> String {
    let mut out = String::new();
    let mut fence = 0;
    for line in text.lines() {
        let ticks = line.trim_start().chars().take_while(|&c| c == '`').count();
        if fence == 0 && ticks >= 3 {
            fence = ticks;
            continue;
        }
        if fence > 0 {
            if closes(line, fence) {
                fence = 0;
            }
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// The anchors GitHub gives the headings of a Markdown text: lower case, spaces
/// as hyphens, punctuation other than hyphens and underscores dropped.
fn anchors(text: &str) -> BTreeSet<String> {
    prose(text)
        .lines()
        .filter_map(|line| line.strip_prefix('#'))
        .map(|heading| {
            heading
                .trim_start_matches('#')
                .trim()
                .to_lowercase()
                .chars()
                .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
                .map(|c| if c == ' ' { '-' } else { c })
                .collect()
        })
        .collect()
}

/// `path` with `.` and `..` resolved lexically (from a canonical repository root).
fn normalize(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for part in path
        .canonicalize()
        .unwrap_or_else(|_| path.to_path_buf())
        .components()
    {
        match part {
            std::path::Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    Some(out)
}
