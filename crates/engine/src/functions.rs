//! `banned_functions` and `allowed_functions`: the library functions a compiled
//! C or C++ program imports, checked before any test runs.

use std::collections::BTreeMap;
use std::path::Path;

use crate::catalog::Language;
use crate::job::Job;
use crate::symbols::{self, Import};

/// Largest program file read for the check.
const MAX_PROGRAM_BYTES: u64 = 256 << 20;

/// Whether the function lists apply to `language`: C and C++, whose programs
/// are ELF files linked against shared libraries.
pub(crate) fn applies_to(language: &Language) -> bool {
    matches!(language.id.as_str(), "c" | "cpp")
}

/// Why the program in `work` may not run, when it calls a banned function or
/// one the allowed list leaves out: each function with where it is called.
pub(crate) fn refusal(job: &Job, work: &Path) -> Option<String> {
    if job.banned_functions.is_empty() && job.allowed_functions.is_empty() {
        return None;
    }
    let mut refused: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (path, elf) in programs(work) {
        let imports = match symbols::imports(&path, &elf) {
            Ok(imports) => imports,
            Err(err) => {
                tracing::debug!("{}: {err}", path.display());
                continue;
            }
        };
        for Import { name, sites } in imports {
            let plain = symbols::plain_name(&name);
            let banned = job
                .banned_functions
                .iter()
                .any(|b| b == plain || *b == name);
            let unlisted = !job.allowed_functions.is_empty()
                && !plain.starts_with('_')
                && !job
                    .allowed_functions
                    .iter()
                    .any(|a| a == plain || *a == name);
            if banned || unlisted {
                refused.entry(plain.to_string()).or_default().extend(sites);
            }
        }
    }
    if refused.is_empty() {
        return None;
    }
    let parts: Vec<String> = refused
        .into_iter()
        .map(|(name, sites)| {
            let how = if job.banned_functions.contains(&name) {
                "banned"
            } else {
                "not allowed"
            };
            if sites.is_empty() {
                format!("{name} ({how}) is used")
            } else {
                format!("{name} ({how}) is called in {}", sites.join(", "))
            }
        })
        .collect();
    Some(format!(
        "the program calls functions it may not: {}",
        parts.join("; ")
    ))
}

/// The ELF files at the top of the work directory (what the compiler linked),
/// read without following links.
fn programs(work: &Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let Ok(entries) = std::fs::read_dir(work) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter_map(|e| {
            let name = e.file_name();
            let elf =
                runbox_sandbox::files::read_box_file(work, Path::new(&name), MAX_PROGRAM_BYTES)
                    .ok()?;
            elf.starts_with(b"\x7fELF").then(|| (e.path(), elf))
        })
        .collect()
}
