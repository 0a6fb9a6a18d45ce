//! A Judge0 submission request, checked field by field like Judge0 does (every
//! problem named under its field, for a 422), then translated to a native request.

use std::collections::BTreeMap;
use std::io::Read as _;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::languages;
use crate::compat::native_request;
use crate::config::ServerConfig;
use crate::wire::types::{ExecuteRequest, FileInput, LimitsInput};

/// Problems of a request, by Judge0 field name.
pub type FieldErrors = BTreeMap<String, Vec<String>>;

/// Judge0's defaults and maxima, within this server's own maxima.
#[derive(Debug, Clone, Serialize)]
pub struct Judge0Config {
    /// Default CPU time, seconds.
    pub cpu_time_limit: f64,
    /// Largest CPU time.
    pub max_cpu_time_limit: f64,
    /// Default extra CPU time before the program is killed.
    pub cpu_extra_time: f64,
    /// Largest extra time.
    pub max_cpu_extra_time: f64,
    /// Default wall time, seconds.
    pub wall_time_limit: f64,
    /// Largest wall time.
    pub max_wall_time_limit: f64,
    /// Default memory, KB (runbox's run default: the whole box).
    pub memory_limit: u64,
    /// Largest memory.
    pub max_memory_limit: u64,
    /// Default stack, KB.
    pub stack_limit: u64,
    /// Largest stack.
    pub max_stack_limit: u64,
    /// Default processes and threads.
    pub max_processes_and_or_threads: u64,
    /// Most processes and threads.
    pub max_max_processes_and_or_threads: u64,
    /// Default largest file (and output), KB.
    pub max_file_size: u64,
    /// Largest `max_file_size`.
    pub max_max_file_size: u64,
    /// Default runs.
    pub number_of_runs: u64,
    /// Most runs.
    pub max_number_of_runs: u64,
}

impl Judge0Config {
    /// Judge0 CE's figures, each capped by this server's maxima.
    pub fn new(config: &ServerConfig) -> Judge0Config {
        let run = &config.run_limits;
        let max_cpu = (run.max_cpu_time_ms as f64 / 1000.0).min(15.0);
        let max_wall = (run.max_wall_time_ms as f64 / 1000.0).min(20.0);
        let max_memory = run.max_memory_kb.min(512_000);
        let memory = run.memory_kb.unwrap_or(256 << 10).min(max_memory);
        let max_output = run.max_output_kb.min(4096);
        Judge0Config {
            cpu_time_limit: 5.0_f64.min(max_cpu),
            max_cpu_time_limit: max_cpu,
            cpu_extra_time: 1.0,
            max_cpu_extra_time: 5.0,
            wall_time_limit: 10.0_f64.min(max_wall),
            max_wall_time_limit: max_wall,
            memory_limit: memory,
            max_memory_limit: max_memory,
            stack_limit: 64_000,
            max_stack_limit: 128_000.min(max_memory),
            max_processes_and_or_threads: 60,
            max_max_processes_and_or_threads: run.max_processes.min(120),
            max_file_size: 1024.min(max_output),
            max_max_file_size: max_output,
            number_of_runs: 1,
            max_number_of_runs: 20,
        }
    }
}

/// What a Judge0 submission keeps beside the native request, to answer in
/// Judge0's terms. Byte fields are base64, so any bytes survive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stored {
    /// Judge0's language id as given.
    pub language_id: u32,
    /// The source, base64.
    #[serde(default)]
    pub source_code: Option<String>,
    /// stdin, base64.
    #[serde(default)]
    pub stdin: Option<String>,
    /// The expected output, base64.
    #[serde(default)]
    pub expected_output: Option<String>,
    /// The zip of additional files, base64.
    #[serde(default)]
    pub additional_files: Option<String>,
    /// As given (only empty ones are accepted).
    #[serde(default)]
    pub compiler_options: Option<String>,
    /// As given.
    #[serde(default)]
    pub command_line_arguments: Option<String>,
    /// Seconds.
    pub cpu_time_limit: f64,
    /// Seconds.
    pub cpu_extra_time: f64,
    /// Seconds.
    pub wall_time_limit: f64,
    /// KB.
    pub memory_limit: u64,
    /// KB.
    pub stack_limit: u64,
    /// Processes and threads.
    pub max_processes_and_or_threads: u64,
    /// Accepted; runbox limits the whole box.
    pub enable_per_process_and_thread_time_limit: bool,
    /// Accepted; runbox limits the whole box.
    pub enable_per_process_and_thread_memory_limit: bool,
    /// KB.
    pub max_file_size: u64,
    /// stderr appended to stdout in answers.
    pub redirect_stderr_to_stdout: bool,
    /// Whether the program could reach the internet (only when the operator
    /// enabled `network`).
    pub enable_network: bool,
    /// Runs asked for.
    pub number_of_runs: u64,
    /// Where the finished submission is PUT.
    #[serde(default)]
    pub callback_url: Option<String>,
    /// Whether the request came base64-encoded (callbacks answer the same way).
    #[serde(default)]
    pub base64_encoded: bool,
}

impl Stored {
    /// The Judge0 view of a native submission that came through no adapter.
    pub fn for_native(language: &str, config: &Judge0Config) -> Stored {
        Stored {
            language_id: languages::id_of(language).unwrap_or(0),
            source_code: None,
            stdin: None,
            expected_output: None,
            additional_files: None,
            compiler_options: None,
            command_line_arguments: None,
            cpu_time_limit: config.cpu_time_limit,
            cpu_extra_time: config.cpu_extra_time,
            wall_time_limit: config.wall_time_limit,
            memory_limit: config.memory_limit,
            stack_limit: config.stack_limit,
            max_processes_and_or_threads: config.max_processes_and_or_threads,
            enable_per_process_and_thread_time_limit: false,
            enable_per_process_and_thread_memory_limit: false,
            max_file_size: config.max_file_size,
            redirect_stderr_to_stdout: false,
            enable_network: false,
            number_of_runs: 1,
            callback_url: None,
            base64_encoded: false,
        }
    }

    /// The stored data of a request's `adapter` value, if it has Judge0's.
    pub fn from_adapter(adapter: Option<&Value>) -> Option<Stored> {
        serde_json::from_value(adapter?.get("judge0")?.clone()).ok()
    }
}

/// Reads fields of a JSON object, collecting Judge0-style messages.
struct Fields<'a> {
    body: &'a Map<String, Value>,
    errors: FieldErrors,
}

impl Fields<'_> {
    fn error(&mut self, field: &str, message: impl Into<String>) {
        self.errors
            .entry(field.to_string())
            .or_default()
            .push(message.into());
    }

    /// A field that is present and not null.
    fn get(&self, field: &str) -> Option<&Value> {
        self.body.get(field).filter(|v| !v.is_null())
    }

    fn text(&mut self, field: &str) -> Option<String> {
        match self.get(field)? {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => {
                self.error(field, "is not a string");
                None
            }
        }
    }

    /// A text of at most 512 characters, as given and split into words like a
    /// shell's (`compiler_options`, `command_line_arguments`).
    fn words(&mut self, field: &str) -> (Option<String>, Vec<String>) {
        let Some(text) = self.text(field) else {
            return (None, Vec::new());
        };
        if text.chars().count() > 512 {
            self.error(field, "is too long (maximum is 512 characters)");
        }
        match split_arguments(&text) {
            Ok(words) => (Some(text), words),
            Err(message) => {
                self.error(field, message);
                (Some(text), Vec::new())
            }
        }
    }

    /// A number within `[min, max]`, or `default` when absent.
    fn number(&mut self, field: &str, default: f64, min: f64, max: f64) -> f64 {
        let value = match self.get(field) {
            None => return default,
            Some(Value::Number(n)) => n.as_f64(),
            Some(Value::String(s)) => s.trim().parse::<f64>().ok(),
            Some(_) => None,
        };
        let Some(value) = value.filter(|v| v.is_finite()) else {
            self.error(field, "is not a number");
            return default;
        };
        if value < min {
            self.error(
                field,
                format!("must be greater than or equal to {}", num(min)),
            );
        } else if value > max {
            self.error(field, format!("must be less than or equal to {}", num(max)));
        }
        value
    }

    /// An integer within `[min, max]`, or `default` when absent.
    fn integer(&mut self, field: &str, default: u64, min: u64, max: u64) -> u64 {
        if self.get(field).is_none() {
            return default;
        }
        let before = self.errors.len();
        let value = self.number(field, default as f64, min as f64, max as f64);
        if self.errors.len() == before && value.fract() != 0.0 {
            self.error(field, "must be an integer");
        }
        value.max(0.0) as u64
    }

    fn boolean(&mut self, field: &str, default: bool) -> bool {
        match self.get(field) {
            None => default,
            Some(Value::Bool(b)) => *b,
            Some(Value::String(s)) if s == "true" || s == "1" => true,
            Some(Value::String(s)) if s == "false" || s == "0" => false,
            Some(_) => {
                self.error(field, "is not included in the list");
                default
            }
        }
    }
}

/// A number as Judge0 writes it in messages: `15`, `0.5`.
fn num(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

/// Bytes of a text field: base64 when the request is base64-encoded.
fn bytes_of(fields: &mut Fields<'_>, field: &str, base64: bool) -> Option<Vec<u8>> {
    let text = fields.text(field)?;
    if !base64 {
        return Some(text.into_bytes());
    }
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    match BASE64.decode(compact) {
        Ok(bytes) => Some(bytes),
        Err(_) => {
            fields.error(field, "is not valid base64");
            None
        }
    }
}

/// Limits on unpacking `additional_files`.
#[derive(Debug, Clone, Copy)]
pub struct ZipBounds {
    /// Files at most.
    pub max_files: usize,
    /// Bytes of all files together, unpacked.
    pub max_bytes: usize,
}

/// Unpacks a zip safely: regular files only, names that stay inside the work
/// directory (no absolute paths, no `..`), at most `bounds` files and bytes (the
/// sizes are checked while reading, not taken from the zip's own headers).
pub fn unzip(zip: &[u8], bounds: ZipBounds) -> Result<Vec<(String, Vec<u8>)>, String> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip))
        .map_err(|e| format!("is not a zip archive: {e}"))?;
    if archive.len() > bounds.max_files.saturating_mul(4).max(64) {
        return Err(format!(
            "has {} entries: at most {} files are allowed",
            archive.len(),
            bounds.max_files
        ));
    }
    let mut files = Vec::new();
    let mut total = 0usize;
    for i in 0..archive.len() {
        let mut entry = archive
            .by_index(i)
            .map_err(|e| format!("has an unreadable entry: {e}"))?;
        let raw = entry.name().to_string();
        if entry.is_dir() {
            continue;
        }
        if entry.is_symlink() || !entry.is_file() {
            return Err(format!("holds '{raw}', which is not a regular file"));
        }
        let name = raw.strip_prefix("./").unwrap_or(&raw).to_string();
        if name.starts_with('/')
            || name.contains('\\')
            || name
                .split('/')
                .any(|part| part.is_empty() || part == "." || part == "..")
        {
            return Err(format!("holds '{raw}', a path outside the work directory"));
        }
        if files.len() == bounds.max_files {
            return Err(format!("holds more than {} files", bounds.max_files));
        }
        let room = bounds.max_bytes.saturating_sub(total);
        let mut content = Vec::new();
        (&mut entry)
            .take(room as u64 + 1)
            .read_to_end(&mut content)
            .map_err(|e| format!("cannot be unpacked: {e}"))?;
        if content.len() > room {
            return Err(format!("unpacks to more than {} bytes", bounds.max_bytes));
        }
        total += content.len();
        files.push((name, content));
    }
    Ok(files)
}

/// Splits `command_line_arguments` like a shell does words: blanks separate,
/// single and double quotes group, a backslash escapes (no expansion of any kind).
pub fn split_arguments(text: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err("has an unclosed single quote".into()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '$' | '`')) => word.push(c),
                            Some(c) => {
                                word.push('\\');
                                word.push(c);
                            }
                            None => return Err("has an unclosed double quote".into()),
                        },
                        Some(c) => word.push(c),
                        None => return Err("has an unclosed double quote".into()),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(c) = chars.next() {
                    word.push(c);
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

/// Checks a Judge0 request body and translates it; `Err` holds every problem
/// by field. `base64` is the request's `base64_encoded`.
pub fn translate(
    body: &Value,
    base64: bool,
    config: &ServerConfig,
) -> Result<ExecuteRequest, FieldErrors> {
    let Some(object) = body.as_object() else {
        let mut errors = FieldErrors::new();
        errors.insert("body".into(), vec!["must be a JSON object".into()]);
        return Err(errors);
    };
    let judge0 = Judge0Config::new(config);
    let mut f = Fields {
        body: object,
        errors: FieldErrors::new(),
    };
    let language_id = match f.get("language_id") {
        None => {
            f.error("language_id", "can't be blank");
            None
        }
        Some(v) => match v
            .as_u64()
            .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
        {
            Some(id) => match u32::try_from(id).ok().and_then(languages::by_id) {
                Some(language) => Some(language),
                None => {
                    f.error(
                        "language_id",
                        format!("language with id {id} doesn't exist"),
                    );
                    None
                }
            },
            None => {
                f.error("language_id", "is not a number");
                None
            }
        },
    };
    let multifile = language_id.is_some_and(|l| l.runbox == "multifile");
    let source = bytes_of(&mut f, "source_code", base64);
    let stdin = bytes_of(&mut f, "stdin", base64);
    let expected = bytes_of(&mut f, "expected_output", base64);
    // additional_files is a base64 zip whatever base64_encoded says.
    let zip = bytes_of(&mut f, "additional_files", true);
    if !multifile && source.as_ref().is_none_or(|s| s.is_empty()) {
        f.error("source_code", "can't be blank");
    }
    if multifile && zip.is_none() {
        f.error(
            "additional_files",
            "can't be blank for a multi-file program (language 89): send a zip with a run script",
        );
    }
    let (compiler_options, options) = f.words("compiler_options");
    let (arguments, args) = f.words("command_line_arguments");
    let cpu = f.number(
        "cpu_time_limit",
        judge0.cpu_time_limit,
        0.0,
        judge0.max_cpu_time_limit,
    );
    let extra = f.number(
        "cpu_extra_time",
        judge0.cpu_extra_time,
        0.0,
        judge0.max_cpu_extra_time,
    );
    let wall = f.number(
        "wall_time_limit",
        judge0.wall_time_limit,
        0.0,
        judge0.max_wall_time_limit,
    );
    let memory_given = f.get("memory_limit").is_some();
    let memory = f.integer(
        "memory_limit",
        judge0.memory_limit,
        2048,
        judge0.max_memory_limit,
    );
    let stack_given = f.get("stack_limit").is_some();
    let stack = f.integer("stack_limit", judge0.stack_limit, 0, judge0.max_stack_limit);
    let processes_given = f.get("max_processes_and_or_threads").is_some();
    let processes = f.integer(
        "max_processes_and_or_threads",
        judge0.max_processes_and_or_threads,
        0,
        judge0.max_max_processes_and_or_threads,
    );
    let per_process_time = f.boolean("enable_per_process_and_thread_time_limit", false);
    let per_process_memory = f.boolean("enable_per_process_and_thread_memory_limit", false);
    let file_size = f.integer(
        "max_file_size",
        judge0.max_file_size,
        0,
        judge0.max_max_file_size,
    );
    let redirect = f.boolean("redirect_stderr_to_stdout", false);
    let network = f.boolean("enable_network", false);
    if network && !config.network.enabled {
        f.error(
            "enable_network",
            "enabling network is not allowed: boxes have no network on this server",
        );
    }
    let runs = f.integer(
        "number_of_runs",
        judge0.number_of_runs,
        1,
        judge0.max_number_of_runs,
    );
    let callback_url = f.text("callback_url");
    if let Some(url) = &callback_url
        && let Err(error) = crate::webhook::check_url(url, config.webhooks.allow_private_addresses)
    {
        f.error("callback_url", error.message);
    }
    let mut extra_files = Vec::new();
    if let Some(zip) = &zip {
        let bounds = ZipBounds {
            max_files: config.requests.max_files.saturating_sub(1).max(1),
            max_bytes: config.requests.max_source_bytes,
        };
        match unzip(zip, bounds) {
            Ok(files) => extra_files = files,
            Err(message) => f.error("additional_files", message),
        }
    }
    let files = if multifile {
        let Some(run) = extra_files.iter().position(|(name, _)| name == "run") else {
            if f.errors.is_empty() {
                f.error(
                    "additional_files",
                    "holds no 'run' script: a multi-file program is built by 'compile' (optional) and started by 'run'",
                );
            }
            return Err(f.errors);
        };
        let entry = extra_files.remove(run);
        std::iter::once(entry)
            .chain(extra_files)
            .collect::<Vec<_>>()
    } else {
        extra_files
    };
    let Some(language) = language_id else {
        return Err(f.errors);
    };
    if !f.errors.is_empty() {
        return Err(f.errors);
    }

    let mut request = native_request(language.runbox);
    let as_input = |(name, content): (String, Vec<u8>)| FileInput {
        name: Some(name),
        content: BASE64.encode(content),
        encoding: crate::wire::types::Encoding::Base64,
    };
    request.files = if multifile {
        Some(files.into_iter().map(as_input).collect())
    } else if files.is_empty() {
        request.source = source
            .as_ref()
            .map(|s| String::from_utf8_lossy(s).into_owned());
        None
    } else {
        let main = FileInput {
            name: None,
            content: BASE64.encode(source.clone().unwrap_or_default()),
            encoding: crate::wire::types::Encoding::Base64,
        };
        Some(
            std::iter::once(main)
                .chain(files.into_iter().map(as_input))
                .collect(),
        )
    };
    // Source that is not UTF-8 travels as a base64 file.
    if let (Some(text), Some(bytes)) = (&request.source, &source)
        && text.as_bytes() != bytes.as_slice()
    {
        request.source = None;
        request.files = Some(vec![FileInput {
            name: None,
            content: BASE64.encode(bytes),
            encoding: crate::wire::types::Encoding::Base64,
        }]);
    }
    request.stdin = stdin.as_ref().map(|bytes| {
        crate::wire::types::Data::Encoded(crate::wire::types::EncodedData {
            content: BASE64.encode(bytes),
            encoding: crate::wire::types::Encoding::Base64,
        })
    });
    request.args = args;
    request.compiler_options = options;
    request.network = network;
    request.stderr_to_stdout = redirect;
    request.runs = Some(u32::try_from(runs.max(1)).unwrap_or(u32::MAX));
    let ms = |seconds: f64| ((seconds * 1000.0).round() as u64).max(1);
    request.limits = Some(LimitsInput {
        // Judge0 lets a program run into its extra time, then judges by the limit.
        cpu_time_ms: Some(ms(cpu + extra)),
        wall_time_ms: Some(ms(wall.max(cpu + extra))),
        memory_kb: memory_given.then_some(memory),
        processes: processes_given.then_some(processes.max(1)),
        output_kb: Some(file_size.max(1)),
        stack_kb: stack_given.then_some(stack.max(64)),
        file_size_kb: Some(file_size.max(1)),
    });
    let stored = Stored {
        language_id: language.id,
        source_code: source.map(|s| BASE64.encode(s)),
        stdin: stdin.map(|s| BASE64.encode(s)),
        expected_output: expected.map(|s| BASE64.encode(s)),
        additional_files: zip.map(|z| BASE64.encode(z)),
        compiler_options,
        command_line_arguments: arguments,
        cpu_time_limit: cpu,
        cpu_extra_time: extra,
        wall_time_limit: wall,
        memory_limit: memory,
        stack_limit: stack,
        max_processes_and_or_threads: processes,
        enable_per_process_and_thread_time_limit: per_process_time,
        enable_per_process_and_thread_memory_limit: per_process_memory,
        max_file_size: file_size,
        redirect_stderr_to_stdout: redirect,
        enable_network: network,
        number_of_runs: runs,
        callback_url,
        base64_encoded: base64,
    };
    // The native submission's callback: sent once by the one webhook sender,
    // its address resolved and pinned, recorded, and surviving a restart.
    request.callback_url = stored.callback_url.clone();
    request.adapter = Some(serde_json::json!({ "judge0": stored }));
    Ok(request)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut buffer = std::io::Cursor::new(Vec::new());
        {
            let mut writer = zip::ZipWriter::new(&mut buffer);
            for (name, content) in entries {
                writer
                    .start_file(*name, zip::write::SimpleFileOptions::default())
                    .unwrap();
                std::io::Write::write_all(&mut writer, content).unwrap();
            }
            writer.finish().unwrap();
        }
        buffer.into_inner()
    }

    #[test]
    fn missing_fields_get_judge0_messages() {
        let errors = translate(&json!({}), false, &ServerConfig::default()).unwrap_err();
        assert_eq!(errors["language_id"], ["can't be blank"]);
        let errors = translate(
            &json!({"language_id": 9999, "source_code": "x"}),
            false,
            &ServerConfig::default(),
        )
        .unwrap_err();
        assert_eq!(
            errors["language_id"],
            ["language with id 9999 doesn't exist"]
        );
    }

    #[test]
    fn limits_out_of_range_name_the_bound() {
        let errors = translate(
            &json!({"language_id": 71, "source_code": "x", "cpu_time_limit": 100,
                    "memory_limit": 100, "number_of_runs": "lots"}),
            false,
            &ServerConfig::default(),
        )
        .unwrap_err();
        assert_eq!(
            errors["cpu_time_limit"],
            ["must be less than or equal to 15"]
        );
        assert_eq!(
            errors["memory_limit"],
            ["must be greater than or equal to 2048"]
        );
        assert_eq!(errors["number_of_runs"], ["is not a number"]);
    }

    #[test]
    fn cpu_limit_includes_the_extra_time_and_base64_is_decoded() {
        let request = translate(
            &json!({"language_id": 71, "source_code": "cHJpbnQoMSk=", "stdin": "aGk=",
                    "cpu_time_limit": "2", "cpu_extra_time": 0.5}),
            true,
            &ServerConfig::default(),
        )
        .unwrap();
        assert_eq!(request.language, "python");
        assert_eq!(request.source.as_deref(), Some("print(1)"));
        let limits = request.limits.unwrap();
        assert_eq!(limits.cpu_time_ms, Some(2500));
        assert_eq!(limits.memory_kb, None);
        let stored = Stored::from_adapter(request.adapter.as_ref()).unwrap();
        assert_eq!(stored.stdin.as_deref(), Some("aGk="));
        assert_eq!(stored.cpu_time_limit, 2.0);
    }

    #[test]
    fn network_is_refused_and_compiler_options_are_split_into_words() {
        let errors = translate(
            &json!({"language_id": 50, "source_code": "x", "enable_network": true,
                    "compiler_options": "-O3"}),
            false,
            &ServerConfig::default(),
        )
        .unwrap_err();
        assert!(errors.contains_key("enable_network"));
        assert!(!errors.contains_key("compiler_options"));
        let request = translate(
            &json!({"language_id": 50, "source_code": "x",
                    "compiler_options": "-O0 -DNAME='a b'"}),
            false,
            &ServerConfig::default(),
        )
        .unwrap();
        assert_eq!(request.compiler_options, ["-O0", "-DNAME=a b"]);
    }

    #[test]
    fn arguments_split_like_shell_words_without_expansion() {
        assert_eq!(
            split_arguments(r#"a 'b c' "d \"e\"" f\ g $HOME"#).unwrap(),
            ["a", "b c", "d \"e\"", "f g", "$HOME"]
        );
        assert!(split_arguments("'open").is_err());
    }

    #[test]
    fn zip_entries_that_escape_or_are_too_large_are_refused() {
        let bounds = ZipBounds {
            max_files: 4,
            max_bytes: 10,
        };
        let ok = unzip(&zip_of(&[("a.txt", b"hi"), ("d/b.txt", b"yo")]), bounds).unwrap();
        assert_eq!(
            ok,
            [
                ("a.txt".to_string(), b"hi".to_vec()),
                ("d/b.txt".to_string(), b"yo".to_vec())
            ]
        );
        for bad in ["../x", "/etc/passwd", "a/../../x"] {
            let err = unzip(&zip_of(&[(bad, b"x")]), bounds).unwrap_err();
            assert!(err.contains("outside the work directory"), "{bad}: {err}");
        }
        let err = unzip(&zip_of(&[("big", &[0u8; 11])]), bounds).unwrap_err();
        assert_eq!(err, "unpacks to more than 10 bytes");
        let many: Vec<(String, &[u8])> = (0..5).map(|i| (format!("{i}"), &b""[..])).collect();
        let many: Vec<(&str, &[u8])> = many.iter().map(|(n, c)| (n.as_str(), *c)).collect();
        assert_eq!(
            unzip(&zip_of(&many), bounds).unwrap_err(),
            "holds more than 4 files"
        );
        assert!(
            unzip(b"not a zip", bounds)
                .unwrap_err()
                .starts_with("is not a zip")
        );
    }

    #[test]
    fn a_multi_file_program_starts_with_its_run_script() {
        let zip = BASE64.encode(zip_of(&[
            ("compile", b"gcc -o m m.c"),
            ("run", b"./m"),
            ("m.c", b"int main(){}"),
        ]));
        let request = translate(
            &json!({"language_id": 89, "additional_files": zip}),
            false,
            &ServerConfig::default(),
        )
        .unwrap();
        assert_eq!(request.language, "multifile");
        let files = request.files.unwrap();
        assert_eq!(files[0].name.as_deref(), Some("run"));
        assert_eq!(files.len(), 3);
        let no_run = BASE64.encode(zip_of(&[("compile", b"true")]));
        let errors = translate(
            &json!({"language_id": 89, "additional_files": no_run}),
            false,
            &ServerConfig::default(),
        )
        .unwrap_err();
        assert!(errors["additional_files"][0].contains("no 'run' script"));
    }
}
