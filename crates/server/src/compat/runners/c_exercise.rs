//! The execute-and-test service for C exercises: `POST /submit` (`code` and
//! `tests`), `POST /encoded` (the same, base64), `POST /execute_code` (code only).
//!
//! How a submission is built: the student's file is compiled with its `main`
//! renamed (`#define main runbox_student_main`), so it never clashes with the test
//! driver's. When the tests define functions named `test*` (`void test_add(void)`),
//! runbox replaces the tests' own `main` with a driver that runs each one in a
//! forked child (its own `perTestTimeout` alarm), so one failing `assert` does not
//! hide the next, and names each failing function. Tests without such functions
//! run their own `main`; a failing one is named from glibc's assertion message
//! (`tests.c:5: test_add: Assertion ... failed`), else `main`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use runbox_store::Scope;
use serde::Deserialize;
use serde_json::json;

use runbox_engine::RunResult;
use runbox_sandbox::Status;

use crate::auth::Caller;
use crate::compat::{LenientJson, execute, millis, native_request};
use crate::error::ApiError;
use crate::state::SharedState;
use crate::wire::types::{Encoding, FileInput, LimitsInput};

/// What the driver writes on stderr before each failing test's name; removed
/// from the output shown.
const MARK: &str = "\u{1e}runbox-failed-test ";

/// The request of `/submit`, `/encoded` and `/execute_code`.
#[derive(Debug, Deserialize)]
pub struct ExerciseRequest {
    /// The student's C source.
    pub code: String,
    /// The tests: C with its own `main` (absent for `/execute_code`).
    #[serde(default)]
    pub tests: Option<String>,
    /// Seconds for the whole run.
    #[serde(default)]
    pub timeout: Option<f64>,
    /// Seconds for each test function.
    #[serde(default, rename = "perTestTimeout")]
    pub per_test_timeout: Option<f64>,
}

/// An error as the service writes it: `{"error": "..."}`.
pub struct ExerciseError(ApiError);

impl From<ApiError> for ExerciseError {
    fn from(error: ApiError) -> Self {
        ExerciseError(error)
    }
}

impl IntoResponse for ExerciseError {
    fn into_response(self) -> Response {
        let status = if self.0.status == StatusCode::PAYLOAD_TOO_LARGE {
            StatusCode::BAD_REQUEST
        } else {
            self.0.status
        };
        (status, Json(json!({"error": self.0.message}))).into_response()
    }
}

/// The test functions of a tests file, in order: `void test_x(void)` or
/// `int test_x()` at the start of a line.
pub fn test_functions(tests: &str) -> Vec<String> {
    let pattern = regex::Regex::new(
        r"(?m)^[ \t]*(?:static[ \t]+)?(?:void|int)[ \t]+(test\w*)[ \t]*\([ \t]*(?:void)?[ \t]*\)[ \t\r\n]*\{",
    );
    let Ok(pattern) = pattern else {
        return Vec::new();
    };
    let mut names: Vec<String> = Vec::new();
    for capture in pattern.captures_iter(tests) {
        let name = capture[1].to_string();
        if !names.contains(&name) {
            names.push(name);
        }
    }
    names
}

/// The driver appended to the tests: runs each test in a child, reports failures.
fn driver(functions: &[String], per_test_seconds: u32) -> String {
    let mut text = String::from(
        "\n#undef main\n#include <stdio.h>\n#include <unistd.h>\n#include <signal.h>\n#include <sys/wait.h>\n",
    );
    for (i, name) in functions.iter().enumerate() {
        text.push_str(&format!(
            "static void runbox_call_{i}(void) {{ {name}(); }}\n"
        ));
    }
    text.push_str("static void (*const runbox_calls[])(void) = {");
    for i in 0..functions.len() {
        text.push_str(&format!("runbox_call_{i}, "));
    }
    text.push_str("};\nstatic const char *const runbox_names[] = {");
    for name in functions {
        text.push_str(&format!("\"{name}\", "));
    }
    // A test passes only when its function returned: the child then exits with
    // a code drawn at random for this test, which the student's code (in the
    // same process, but another file) cannot name; an exit(0) or _exit(0) from
    // the student's code is a failure, not a pass.
    text.push_str(&format!(
        r#"}};
static unsigned char runbox_passed_code(void) {{
    unsigned char code = 0;
    FILE *random = fopen("/dev/urandom", "rb");
    if (random) {{
        if (fread(&code, 1, 1, random) != 1) code = 0;
        fclose(random);
    }}
    return (unsigned char)(2 + code % 250);
}}
int main(void) {{
    int failed = 0;
    for (unsigned i = 0; i < sizeof runbox_calls / sizeof runbox_calls[0]; i++) {{
        fflush(stdout);
        fflush(stderr);
        unsigned char passed = runbox_passed_code();
        pid_t pid = fork();
        if (pid < 0) {{ perror("fork"); return 2; }}
        if (pid == 0) {{
            if ({per_test_seconds}) alarm({per_test_seconds});
            runbox_calls[i]();
            fflush(stdout);
            _exit(passed);
        }}
        int status = 0;
        while (waitpid(pid, &status, 0) < 0) {{}}
        if (!(WIFEXITED(status) && WEXITSTATUS(status) == passed)) {{
            failed++;
            if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM)
                fprintf(stderr, "%s timed out after {per_test_seconds} s\n", runbox_names[i]);
            fprintf(stderr, "{MARK}%s\n", runbox_names[i]);
        }}
    }}
    return failed ? 1 : 0;
}}
"#
    ));
    text
}

/// The student's file with its `main` renamed.
fn student_file(code: &str) -> String {
    format!("#define main runbox_student_main\n#line 1 \"solution.c\"\n{code}")
}

/// Runs one exercise and answers in the service's shape.
async fn run_exercise(
    state: &SharedState,
    caller: &Caller,
    exercise: ExerciseRequest,
) -> Result<Response, ExerciseError> {
    let mut request = native_request("c");
    let functions = exercise
        .tests
        .as_deref()
        .map(test_functions)
        .unwrap_or_default();
    let per_test = exercise
        .per_test_timeout
        .filter(|t| t.is_finite() && *t > 0.0)
        .map_or(0, |t| t.ceil().min(3600.0) as u32);
    let file = |name: &str, text: String| FileInput {
        name: Some(name.into()),
        content: text,
        encoding: Encoding::Utf8,
    };
    request.files = Some(match &exercise.tests {
        None => vec![file("main.c", exercise.code.clone())],
        Some(tests) if functions.is_empty() => vec![
            file("tests.c", format!("#line 1 \"tests.c\"\n{tests}")),
            file("solution.c", student_file(&exercise.code)),
        ],
        Some(tests) => vec![
            file(
                "tests.c",
                format!(
                    "#define main runbox_tests_main\n#line 1 \"tests.c\"\n{tests}{}",
                    driver(&functions, per_test)
                ),
            ),
            file("solution.c", student_file(&exercise.code)),
        ],
    });
    if let Some(timeout) = exercise.timeout {
        if !timeout.is_finite() || timeout <= 0.0 {
            return Err(ApiError::invalid(
                "timeout",
                "timeout must be a positive number of seconds",
            )
            .into());
        }
        let ms = (timeout * 1000.0).ceil() as u64;
        request.limits = Some(LimitsInput {
            cpu_time_ms: Some(ms),
            wall_time_ms: Some(ms),
            ..LimitsInput::default()
        });
    } else {
        request.limits = Some(LimitsInput {
            cpu_time_ms: Some(10_000),
            wall_time_ms: Some(10_000),
            ..LimitsInput::default()
        });
    }
    let result = execute(state, caller, request).await?;
    Ok(Json(answer(&result, &functions, exercise.tests.is_some())).into_response())
}

/// The service's answer for a result.
pub fn answer(result: &RunResult, functions: &[String], has_tests: bool) -> serde_json::Value {
    let mut output = String::new();
    let (compile_ok, build_ok, compile_time) = match &result.compile {
        Some(compile) => {
            let text = String::from_utf8_lossy(
                &[compile.stdout.as_slice(), compile.stderr.as_slice()].concat(),
            )
            .into_owned();
            let link_only = compile.status == Status::RuntimeError
                && !text.contains("error:")
                && (text.contains("undefined reference") || text.contains("ld returned"));
            output.push_str(&text);
            (
                compile.status == Status::Ok || link_only,
                compile.status == Status::Ok,
                millis(compile.wall_time),
            )
        }
        None => (false, false, 0.0),
    };
    let mut failed: Vec<String> = Vec::new();
    let (ran, run_time) = match &result.run {
        Some(run) => {
            output.push_str(&String::from_utf8_lossy(&run.stdout));
            let stderr = String::from_utf8_lossy(&run.stderr);
            for line in stderr.split_inclusive('\n') {
                match line.strip_prefix(MARK) {
                    Some(name) => failed.push(name.trim_end().to_string()),
                    None => output.push_str(line),
                }
            }
            if run.status != Status::Ok && has_tests && functions.is_empty() {
                failed.push(assertion_function(&stderr).unwrap_or_else(|| "main".into()));
            } else if run.status != Status::Ok && has_tests && failed.is_empty() {
                // The driver itself did not finish (a time or memory limit).
                failed.extend(functions.iter().cloned());
            }
            (run.status == Status::Ok, millis(run.wall_time))
        }
        None => (false, 0.0),
    };
    if let Some(run) = &result.run
        && !matches!(run.status, Status::Ok | Status::RuntimeError)
    {
        output.push_str(&format!(
            "\n[runbox: {}]\n",
            run.status.as_str().replace('_', " ")
        ));
    }
    json!({
        "build": build_ok,
        "compile": compile_ok,
        "run": ran,
        "output": output,
        "compilation_time": crate::compat::seconds(compile_time),
        "run_time": crate::compat::seconds(run_time),
        "failed_tests": failed,
    })
}

/// The function named in glibc's assertion message.
fn assertion_function(stderr: &str) -> Option<String> {
    let line = stderr.lines().find(|l| l.contains("Assertion"))?;
    let before = line.split(": Assertion").next()?;
    let name = before.rsplit(": ").next()?.trim();
    (!name.is_empty() && name.chars().all(|c| c.is_alphanumeric() || c == '_'))
        .then(|| name.to_string())
}

fn decode_field(text: &str, field: &str) -> Result<String, ApiError> {
    let bytes = BASE64
        .decode(text.trim())
        .map_err(|e| ApiError::invalid(field, format!("{field} is not valid base64: {e}")))?;
    String::from_utf8(bytes)
        .map_err(|_| ApiError::invalid(field, format!("{field} is not UTF-8 text once decoded")))
}

/// `POST /submit`.
pub async fn submit(
    State(state): State<SharedState>,
    caller: Result<Caller, ApiError>,
    body: Result<LenientJson<ExerciseRequest>, ApiError>,
) -> Result<Response, ExerciseError> {
    let caller = caller?;
    caller.require(Scope::Execute)?;
    let LenientJson(exercise) = body?;
    // "Code and optional tests": without tests the code is compiled and run, as
    // /execute_code does, in /submit's own answer.
    run_exercise(&state, &caller, exercise).await
}

/// `POST /encoded`: `code` and `tests` in base64.
pub async fn encoded(
    State(state): State<SharedState>,
    caller: Result<Caller, ApiError>,
    body: Result<LenientJson<ExerciseRequest>, ApiError>,
) -> Result<Response, ExerciseError> {
    let caller = caller?;
    caller.require(Scope::Execute)?;
    let LenientJson(mut exercise) = body?;
    exercise.code = decode_field(&exercise.code, "code")?;
    let Some(tests) = &exercise.tests else {
        return Err(ApiError::invalid("tests", "tests is required").into());
    };
    exercise.tests = Some(decode_field(tests, "tests")?);
    run_exercise(&state, &caller, exercise).await
}

/// `POST /execute_code`: the code alone, with its own `main`.
pub async fn execute_code(
    State(state): State<SharedState>,
    caller: Result<Caller, ApiError>,
    body: Result<LenientJson<ExerciseRequest>, ApiError>,
) -> Result<Response, ExerciseError> {
    let caller = caller?;
    caller.require(Scope::Execute)?;
    let LenientJson(mut exercise) = body?;
    exercise.tests = None;
    run_exercise(&state, &caller, exercise).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_functions_are_found_in_order_once() {
        let tests = "#include <assert.h>\nvoid test_add(void) {\n assert(1);\n}\nstatic void test_sub()\n{\n}\nint helper(void) { return 0; }\nint main(void) { test_add(); test_sub(); }\nvoid test_add(void);\n";
        assert_eq!(test_functions(tests), ["test_add", "test_sub"]);
    }

    #[test]
    fn the_failing_function_is_read_from_the_assertion_message() {
        let stderr = "main: tests.c:7: test_mul: Assertion `mul(2, 3) == 5' failed.\n";
        assert_eq!(assertion_function(stderr).as_deref(), Some("test_mul"));
        assert_eq!(assertion_function("Segmentation fault"), None);
    }
}
