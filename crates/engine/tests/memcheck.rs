//! analysis.memcheck: each test runs under Valgrind's memcheck in its box; a
//! leak and an invalid read are reported at the user's lines, a clean program
//! has an empty report, and the verdicts stay the program's.

use std::sync::{Arc, LazyLock};

use runbox_engine::{
    Analysis, Catalog, Engine, EngineConfig, Job, MemcheckReport, ResultStatus, SourceFile,
    TestCase,
};
use runbox_sandbox::{Sandbox, SandboxOptions};

static SANDBOX: LazyLock<Arc<Sandbox>> = LazyLock::new(|| {
    Arc::new(
        Sandbox::new(SandboxOptions {
            max_boxes: 2,
            uid_base: 2_098_000,
            ..SandboxOptions::default()
        })
        .expect("tests run as root on a host with cgroups"),
    )
});

fn memchecked(language: &str, name: &str, source: &str) -> (ResultStatus, MemcheckReport) {
    assert!(
        std::path::Path::new("/usr/bin/valgrind").exists(),
        "valgrind is not installed: scripts/install-deps.sh installs it"
    );
    let engine = Engine::new(
        SANDBOX.clone(),
        Catalog::embedded().unwrap(),
        EngineConfig::default(),
    );
    let job = Job {
        language: language.into(),
        files: vec![SourceFile::named(name, source)],
        tests: vec![TestCase {
            name: "1".into(),
            expected_output: Some(b"ok\n".to_vec()),
            ..TestCase::default()
        }],
        analysis: Analysis { memcheck: true },
        ..Job::default()
    };
    let result = engine.check_and_run(&job).unwrap();
    let test = result.tests.as_ref().unwrap()[0].clone();
    (
        result.status,
        test.memcheck
            .unwrap_or_else(|| panic!("no report: {result:?}")),
    )
}

const FAULTY: &str = "#include <stdio.h>\n\
#include <stdlib.h>\n\
int main(void) {\n\
    int *lost = malloc(10 * sizeof *lost);\n\
    int *small = malloc(2 * sizeof *small);\n\
    small[0] = small[1] = 1;\n\
    volatile int past_the_end = small[2];\n\
    lost = NULL;\n\
    free(small);\n\
    printf(\"ok\\n\");\n\
    return 0 * past_the_end;\n\
}\n";

#[test]
fn a_leak_and_an_invalid_read_are_reported_at_their_lines() {
    let (status, report) = memchecked("c", "main.c", FAULTY);
    assert_eq!(status, ResultStatus::Accepted, "{report:?}");
    assert_eq!(report.invalid_reads, 1, "{report:?}");
    assert_eq!(report.definitely_lost_bytes, 40, "{report:?}");
    let at = |kind: &str| {
        report
            .findings
            .iter()
            .find(|f| f.kind == kind)
            .map(|f| (f.file.clone().unwrap_or_default(), f.line.unwrap_or(0)))
            .unwrap_or_else(|| panic!("no {kind}: {report:?}"))
    };
    assert_eq!(at("InvalidRead"), ("main.c".to_string(), 7));
    assert_eq!(at("Leak_DefinitelyLost"), ("main.c".to_string(), 4));
}

#[test]
fn a_clean_program_has_an_empty_report() {
    let source = "#include <stdio.h>\n#include <stdlib.h>\n\
                  int main(void) {\n    char *p = malloc(4);\n    p[0] = 'o';\n    \
                  printf(\"%ck\\n\", p[0]);\n    free(p);\n    return 0;\n}\n";
    let (status, report) = memchecked("c", "main.c", source);
    assert_eq!(status, ResultStatus::Accepted, "{report:?}");
    assert_eq!(report, MemcheckReport::default());
}

#[test]
fn a_cpp_leak_is_reported_at_its_line() {
    let source = "#include <iostream>\n\
                  int main() {\n\
                      int *leak = new int[4];\n\
                      leak[0] = 1;\n\
                      std::cout << \"ok\" << std::endl;\n\
                      return leak[0] - 1;\n\
                  }\n";
    let (_, report) = memchecked("cpp", "main.cpp", source);
    assert_eq!(report.definitely_lost_bytes, 16, "{report:?}");
    let leak = &report.findings[0];
    assert_eq!(
        (leak.file.as_deref(), leak.line),
        (Some("main.cpp"), Some(3)),
        "{report:?}"
    );
}
