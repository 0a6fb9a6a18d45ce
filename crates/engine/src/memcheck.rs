//! `analysis: {"memcheck": true}`: each run of a C or C++ program under
//! Valgrind's memcheck, inside its own box, summarised beside the verdict.
//!
//! Valgrind runs the program on a synthetic CPU in the same process: 20 to 50
//! times slower and with several times the memory, so a memcheck run gets
//! [`TIME_FACTOR`] times the time limits and [`EXTRA_MEMORY`] more memory
//! (the verdicts are judged against these). Valgrind writes its findings as XML
//! into the run's (writable) work directory; once the box has ended the file is
//! read from the host side like an output file (never following a link) and
//! parsed with `roxmltree`. Each finding is placed at the first stack frame in
//! the user's sources (files under the work directory), the program being
//! compiled with `-g -O0` so that lines are the user's own.

use serde::{Deserialize, Serialize};

/// How many times the CPU and wall limits a memcheck run gets.
pub const TIME_FACTOR: u32 = 20;

/// Memory added to a memcheck run's limit, for Valgrind's own.
pub const EXTRA_MEMORY: u64 = 512 << 20;

/// Where Valgrind writes its XML, inside the work directory.
pub(crate) const XML_FILE: &str = ".runbox-memcheck.xml";

/// Largest XML file read.
pub(crate) const MAX_XML_BYTES: u64 = 8 << 20;

/// Findings kept per run, at most.
const MAX_FINDINGS: usize = 100;

/// The command that runs `argv` under memcheck.
pub(crate) fn wrap(argv: Vec<String>, work_dir: &str) -> Vec<String> {
    let mut wrapped: Vec<String> = [
        "valgrind",
        "--tool=memcheck",
        "--leak-check=full",
        "--show-leak-kinds=definite,indirect",
        "--errors-for-leak-kinds=definite,indirect",
        "--track-origins=yes",
        "--child-silent-after-fork=yes",
        "-q",
        "--xml=yes",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    wrapped.push(format!("--xml-file={work_dir}/{XML_FILE}"));
    wrapped.extend(argv);
    wrapped
}

/// What memcheck found in one run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemcheckReport {
    /// Reads of memory the program does not own.
    pub invalid_reads: u32,
    /// Writes to memory the program does not own.
    pub invalid_writes: u32,
    /// Uses of uninitialised values (in a condition or a system call).
    pub uninitialised: u32,
    /// Bytes definitely lost (no pointer to them left at exit).
    pub definitely_lost_bytes: u64,
    /// Bytes lost because the blocks pointing to them were lost.
    pub indirectly_lost_bytes: u64,
    /// Each finding, in Valgrind's order (empty: a clean run).
    pub findings: Vec<Finding>,
}

/// One memcheck finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// Valgrind's kind: `InvalidRead`, `InvalidWrite`, `UninitCondition`,
    /// `Leak_DefinitelyLost`, ...
    pub kind: String,
    /// Valgrind's description.
    pub what: String,
    /// The user's source file of the first frame in it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// Its line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    /// The function of that frame.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub function: Option<String>,
}

/// Parses Valgrind's XML output; `work_dir` is where the user's files were.
pub(crate) fn parse(xml: &str, work_dir: &str) -> Result<MemcheckReport, String> {
    let doc = roxmltree::Document::parse(xml).map_err(|e| format!("memcheck XML: {e}"))?;
    let mut report = MemcheckReport::default();
    for error in doc.descendants().filter(|n| n.has_tag_name("error")) {
        let text = |node: roxmltree::Node<'_, '_>, tag: &str| {
            node.children()
                .find(|c| c.has_tag_name(tag))
                .and_then(|c| c.text())
                .map(str::to_string)
        };
        let kind = text(error, "kind").unwrap_or_default();
        let xwhat = error.children().find(|c| c.has_tag_name("xwhat"));
        let what = text(error, "what")
            .or_else(|| xwhat.and_then(|x| text(x, "text")))
            .unwrap_or_default();
        let leaked: u64 = xwhat
            .and_then(|x| text(x, "leakedbytes"))
            .and_then(|b| b.parse().ok())
            .unwrap_or(0);
        match kind.as_str() {
            "InvalidRead" => report.invalid_reads += 1,
            "InvalidWrite" => report.invalid_writes += 1,
            "UninitCondition" | "UninitValue" | "SyscallParam" => report.uninitialised += 1,
            "Leak_DefinitelyLost" => report.definitely_lost_bytes += leaked,
            "Leak_IndirectlyLost" => report.indirectly_lost_bytes += leaked,
            _ => {}
        }
        if report.findings.len() >= MAX_FINDINGS {
            continue;
        }
        // The first frame in the user's files: the line they wrote.
        let frames: Vec<roxmltree::Node<'_, '_>> = error
            .children()
            .find(|c| c.has_tag_name("stack"))
            .map(|s| s.children().filter(|f| f.has_tag_name("frame")).collect())
            .unwrap_or_default();
        let own = frames
            .iter()
            .find(|f| text(**f, "dir").is_some_and(|d| d.starts_with(work_dir)))
            .or_else(|| frames.iter().find(|f| text(**f, "file").is_some()));
        report.findings.push(Finding {
            kind,
            what,
            file: own.and_then(|f| text(*f, "file")),
            line: own
                .and_then(|f| text(*f, "line"))
                .and_then(|l| l.parse().ok()),
            function: own.and_then(|f| text(*f, "fn")),
        });
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    const XML: &str = r#"<?xml version="1.0"?>
<valgrindoutput>
<error>
  <unique>0x0</unique>
  <kind>InvalidRead</kind>
  <what>Invalid read of size 4</what>
  <stack>
    <frame><ip>0x1</ip><obj>/box/main</obj><fn>main</fn><dir>/box</dir><file>main.c</file><line>6</line></frame>
  </stack>
</error>
<error>
  <unique>0x1</unique>
  <kind>Leak_DefinitelyLost</kind>
  <xwhat><text>40 bytes in 1 blocks are definitely lost in loss record 1 of 1</text><leakedbytes>40</leakedbytes><leakedblocks>1</leakedblocks></xwhat>
  <stack>
    <frame><ip>0x2</ip><obj>/usr/libexec/valgrind/vgpreload_memcheck-amd64-linux.so</obj><fn>malloc</fn><dir>./coregrind/m_replacemalloc</dir><file>vg_replace_malloc.c</file><line>381</line></frame>
    <frame><ip>0x3</ip><obj>/box/main</obj><fn>main</fn><dir>/box</dir><file>main.c</file><line>4</line></frame>
  </stack>
</error>
</valgrindoutput>
"#;

    #[test]
    fn findings_are_counted_and_placed_at_the_users_own_frame() {
        let report = parse(XML, "/box").unwrap();
        assert_eq!(report.invalid_reads, 1);
        assert_eq!(report.definitely_lost_bytes, 40);
        assert_eq!(report.findings.len(), 2);
        assert_eq!(report.findings[1].file.as_deref(), Some("main.c"));
        assert_eq!(report.findings[1].line, Some(4));
        assert_eq!(report.findings[1].function.as_deref(), Some("main"));
    }

    #[test]
    fn a_clean_run_has_an_empty_report_and_bad_xml_is_an_error() {
        let clean = parse("<valgrindoutput></valgrindoutput>", "/box").unwrap();
        assert_eq!(clean, MemcheckReport::default());
        assert!(parse("<valgrindoutput>", "/box").is_err());
    }
}
