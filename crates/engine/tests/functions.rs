//! banned_functions and allowed_functions: the compiled program's library
//! functions are checked before any test runs; a refused one ends the job as a
//! compile error that names it and where it is called.

use std::sync::{Arc, LazyLock};

use runbox_engine::{Catalog, Engine, EngineConfig, Job, ResultStatus, SourceFile, TestCase};
use runbox_sandbox::{Sandbox, SandboxOptions};

static SANDBOX: LazyLock<Arc<Sandbox>> = LazyLock::new(|| {
    Arc::new(
        Sandbox::new(SandboxOptions {
            max_boxes: 2,
            uid_base: 2_097_000,
            ..SandboxOptions::default()
        })
        .expect("tests run as root on a host with cgroups"),
    )
});

fn engine() -> Engine {
    Engine::new(
        SANDBOX.clone(),
        Catalog::embedded().unwrap(),
        EngineConfig::default(),
    )
}

fn job(language: &str, name: &str, source: &str) -> Job {
    Job {
        language: language.into(),
        files: vec![SourceFile::named(name, source)],
        tests: vec![TestCase {
            name: "1".into(),
            expected_output: Some(b"ok\n".to_vec()),
            ..TestCase::default()
        }],
        ..Job::default()
    }
}

const SHELL_OUT: &str = "#include <stdio.h>\n\
#include <stdlib.h>\n\
\n\
__attribute__((noinline)) static void helper(void) {\n\
    system(\"echo ok\");\n\
}\n\
\n\
int main(void) {\n\
    helper();\n\
    return 0;\n\
}\n";

#[test]
fn a_banned_call_is_a_compile_error_naming_the_function_its_caller_and_line() {
    let mut j = job("c", "main.c", SHELL_OUT);
    j.banned_functions = vec!["system".into(), "fork".into()];
    let result = engine().check_and_run(&j).unwrap();
    assert_eq!(result.status, ResultStatus::CompileError, "{result:?}");
    assert!(result.tests.is_none(), "no test may run: {result:?}");
    let message = result.message.unwrap();
    assert!(
        message.contains("system (banned) is called in helper (main.c:5)"),
        "{message}"
    );
    assert!(!message.contains("fork"), "{message}");
    let compile = result.compile.unwrap();
    assert!(String::from_utf8_lossy(&compile.stderr).contains("system (banned)"));
}

#[test]
fn a_function_left_out_of_the_allowed_list_is_refused_and_listed_ones_pass() {
    let source = "#include <stdio.h>\n#include <stdlib.h>\n\
                  int main(void) {\n    char *line = NULL; size_t n = 0; getline(&line, &n, stdin);\n    \
                  puts(\"ok\");\n    free(line);\n    return 0;\n}\n";
    let mut j = job("c", "main.c", source);
    j.allowed_functions = vec!["puts".into(), "printf".into()];
    let result = engine().check_and_run(&j).unwrap();
    assert_eq!(result.status, ResultStatus::CompileError, "{result:?}");
    let message = result.message.unwrap();
    assert!(
        message.contains("getline (not allowed) is called in main (main.c:4)"),
        "{message}"
    );
    assert!(message.contains("free (not allowed)"), "{message}");
    assert!(!message.contains("puts"), "{message}");
    j.allowed_functions
        .extend(["getline".into(), "free".into()]);
    let result = engine().check_and_run(&j).unwrap();
    assert_eq!(result.status, ResultStatus::Accepted, "{result:?}");
}

#[test]
fn a_cpp_program_is_checked_too() {
    let source = "#include <cstdlib>\n#include <iostream>\n\
                  int main() {\n    std::cout << \"ok\" << std::endl;\n    std::abort();\n}\n";
    let mut j = job("cpp", "main.cpp", source);
    j.banned_functions = vec!["abort".into()];
    let result = engine().check_and_run(&j).unwrap();
    assert_eq!(result.status, ResultStatus::CompileError, "{result:?}");
    assert!(
        result
            .message
            .as_deref()
            .unwrap()
            .contains("abort (banned) is called in main (main.cpp:5)"),
        "{result:?}"
    );
}

#[test]
fn function_lists_are_refused_for_other_languages() {
    let mut j = job("python", "main.py", "print('ok')\n");
    j.banned_functions = vec!["system".into()];
    let err = engine().check_and_run(&j).unwrap_err();
    assert!(err.to_string().contains("C and C++"), "{err}");
}
