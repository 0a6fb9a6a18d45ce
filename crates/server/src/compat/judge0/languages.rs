//! Judge0 CE's language ids for the languages runbox has.
//!
//! Judge0 gives each compiler version its own id; clients hard-code them (the
//! official SDK maps `PYTHON` to 71 for 1.13.1 and to 113 for 1.14.0). Every id of
//! either release that names a language runbox has is accepted and runs that
//! language's installed version. Languages Judge0 CE lacks get ids from 1001 on.

use std::sync::Arc;

use runbox_engine::{Installation, Language};

/// One Judge0 language id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Judge0Language {
    /// Judge0's id.
    pub id: u32,
    /// The runbox catalog id it runs.
    pub runbox: &'static str,
    /// Judge0's name, with `{v}` for the installed version.
    pub name: &'static str,
    /// The version Judge0's own list gives this id (`3.8.1` for 71); empty for
    /// runbox's own ids (1001 on), which run whatever is installed.
    pub version: &'static str,
}

const fn lang(id: u32, runbox: &'static str, name: &'static str) -> Judge0Language {
    Judge0Language {
        id,
        runbox,
        name,
        version: "",
    }
}

const fn at(
    id: u32,
    runbox: &'static str,
    name: &'static str,
    version: &'static str,
) -> Judge0Language {
    Judge0Language {
        id,
        runbox,
        name,
        version,
    }
}

/// Every id, the main one of each language first.
pub const LANGUAGES: &[Judge0Language] = &[
    at(45, "nasm", "Assembly (NASM {v})", "2.14.02"),
    at(46, "bash", "Bash ({v})", "5.0.0"),
    at(50, "c", "C (GCC {v})", "9.2.0"),
    at(48, "c", "C (GCC {v})", "7.4.0"),
    at(49, "c", "C (GCC {v})", "8.3.0"),
    at(103, "c", "C (GCC {v})", "14.1.0"),
    // The official SDK's C++ for Judge0 1.13.1 is 52: the main id is the one
    // clients pick, the others are listed as archived aliases.
    at(52, "cpp", "C++ (GCC {v})", "7.4.0"),
    at(54, "cpp", "C++ (GCC {v})", "9.2.0"),
    at(53, "cpp", "C++ (GCC {v})", "8.3.0"),
    at(105, "cpp", "C++ (GCC {v})", "14.1.0"),
    at(51, "csharp", "C# (Mono {v})", "6.6.0"),
    at(86, "clojure", "Clojure ({v})", "1.10.1"),
    at(55, "commonlisp", "Common Lisp (SBCL {v})", "2.0.0"),
    at(56, "d", "D (GDC {v})", "9.2.0"),
    at(57, "elixir", "Elixir ({v})", "1.9.4"),
    at(58, "erlang", "Erlang (OTP {v})", "22.2"),
    at(59, "fortran", "Fortran (GFortran {v})", "9.2.0"),
    at(60, "go", "Go ({v})", "1.13.5"),
    at(95, "go", "Go ({v})", "1.18.5"),
    at(106, "go", "Go ({v})", "1.22.0"),
    at(107, "go", "Go ({v})", "1.23.5"),
    at(88, "groovy", "Groovy ({v})", "3.0.3"),
    at(61, "haskell", "Haskell (GHC {v})", "8.8.1"),
    at(62, "java", "Java (OpenJDK {v})", "13.0.1"),
    at(91, "java", "Java (JDK {v})", "17.0.6"),
    at(63, "javascript", "JavaScript (Node.js {v})", "12.14.0"),
    at(93, "javascript", "JavaScript (Node.js {v})", "18.15.0"),
    at(97, "javascript", "JavaScript (Node.js {v})", "20.17.0"),
    at(102, "javascript", "JavaScript (Node.js {v})", "22.8.0"),
    at(78, "kotlin", "Kotlin ({v})", "1.3.70"),
    at(111, "kotlin", "Kotlin ({v})", "2.1.10"),
    at(64, "lua", "Lua ({v})", "5.3.5"),
    lang(89, "multifile", "Multi-file program"),
    at(65, "ocaml", "OCaml ({v})", "4.09.0"),
    at(66, "octave", "Octave ({v})", "5.1.0"),
    at(67, "pascal", "Pascal (FPC {v})", "3.0.4"),
    at(85, "perl", "Perl ({v})", "5.28.1"),
    at(68, "php", "PHP ({v})", "7.4.1"),
    at(98, "php", "PHP ({v})", "8.3.11"),
    at(69, "prolog", "Prolog (SWI-Prolog {v})", "8.2.0"),
    at(71, "python", "Python ({v})", "3.8.1"),
    at(92, "python", "Python ({v})", "3.11.2"),
    at(100, "python", "Python ({v})", "3.12.5"),
    at(109, "python", "Python ({v})", "3.13.2"),
    at(113, "python", "Python ({v})", "3.14.0"),
    at(80, "r", "R ({v})", "4.0.0"),
    at(99, "r", "R ({v})", "4.4.1"),
    at(72, "ruby", "Ruby ({v})", "2.7.0"),
    at(73, "rust", "Rust ({v})", "1.40.0"),
    at(108, "rust", "Rust ({v})", "1.85.0"),
    at(81, "scala", "Scala ({v})", "2.13.2"),
    at(112, "scala", "Scala ({v})", "3.4.2"),
    at(82, "sqlite", "SQL (SQLite {v})", "3.27.2"),
    at(74, "typescript", "TypeScript ({v})", "3.7.4"),
    at(94, "typescript", "TypeScript ({v})", "5.0.3"),
    at(101, "typescript", "TypeScript ({v})", "5.6.2"),
    lang(1001, "awk", "AWK (GNU Awk {v})"),
    lang(1002, "crystal", "Crystal ({v})"),
    lang(1003, "nim", "Nim ({v})"),
    lang(1004, "pypy", "Python (PyPy {v})"),
    lang(1005, "racket", "Racket ({v})"),
    lang(1006, "scheme", "Scheme (Guile {v})"),
    lang(1007, "tcl", "Tcl ({v})"),
    lang(1008, "ada", "Ada (GNAT {v})"),
];

/// The entry of a Judge0 id.
pub fn by_id(id: u32) -> Option<&'static Judge0Language> {
    LANGUAGES.iter().find(|l| l.id == id)
}

/// The main Judge0 id of a runbox language.
pub fn id_of(runbox: &str) -> Option<u32> {
    LANGUAGES.iter().find(|l| l.runbox == runbox).map(|l| l.id)
}

/// The installed entry (language version) a Judge0 id runs: the one of its
/// Judge0 version's major.minor when installed, else the closest of the same
/// major line, else the closest installed; `None` when nothing of its language is.
pub fn pick<'a>(
    language: &Judge0Language,
    installed: &'a [(Arc<Language>, Installation)],
) -> Option<&'a (Arc<Language>, Installation)> {
    let candidates: Vec<&(Arc<Language>, Installation)> = installed
        .iter()
        .filter(|(l, i)| l.id == language.runbox && i.is_installed())
        .collect();
    let wanted = runbox_engine::version::normalized(language.version);
    let Some(wanted) = wanted else {
        // runbox's own ids: the default (or newest) version, the first listed.
        return candidates
            .iter()
            .copied()
            .find(|(l, _)| l.default)
            .or_else(|| {
                candidates
                    .iter()
                    .copied()
                    .max_by_key(|(_, i)| i.version().and_then(runbox_engine::version::normalized))
            });
    };
    let distance = |entry: &&(Arc<Language>, Installation)| {
        let have = entry
            .1
            .version()
            .and_then(runbox_engine::version::normalized);
        match have {
            None => (3u8, u64::MAX, u64::MAX),
            Some(v) if v.major == wanted.major && v.minor == wanted.minor => (0, 0, 0),
            Some(v) if v.major == wanted.major => {
                (1, v.minor.abs_diff(wanted.minor), u64::MAX - v.minor)
            }
            Some(v) => (2, v.major.abs_diff(wanted.major), u64::MAX - v.major),
        }
    };
    candidates.into_iter().min_by_key(distance)
}

/// Whether `language`'s own Judge0 version is what `installed_version` is
/// (same major.minor): its name then says the installed version alone.
pub fn is_exact(language: &Judge0Language, installed_version: Option<&str>) -> bool {
    match (
        runbox_engine::version::normalized(language.version),
        installed_version.and_then(runbox_engine::version::normalized),
    ) {
        (Some(wanted), Some(have)) => wanted.major == have.major && wanted.minor == have.minor,
        (None, _) => true,
        _ => false,
    }
}

/// Whether `language` is the main id of its runbox language (the others alias it).
pub fn is_main(language: &Judge0Language) -> bool {
    id_of(language.runbox) == Some(language.id)
}

impl Judge0Language {
    /// Its display name with the installed version that runs it; when that is
    /// not the version Judge0 gives the id, the name says so (`Python (3.13.5,
    /// for 3.12.5)`).
    pub fn display_name(&self, version: Option<&str>) -> String {
        let shown = match version {
            None => "not installed".to_string(),
            Some(v) if is_exact(self, Some(v)) => v.to_string(),
            Some(v) => format!("{v}, for {}", self.version),
        };
        self.name.replace("{v}", &shown)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_well_known_ids_run_the_expected_languages() {
        for (id, runbox) in [
            (50, "c"),
            (54, "cpp"),
            (62, "java"),
            (63, "javascript"),
            (71, "python"),
            (60, "go"),
            (73, "rust"),
            (72, "ruby"),
            (68, "php"),
            (51, "csharp"),
            (74, "typescript"),
            (46, "bash"),
            (89, "multifile"),
        ] {
            assert_eq!(by_id(id).map(|l| l.runbox), Some(runbox), "{id}");
        }
        assert_eq!(id_of("cpp"), Some(52));
        assert_eq!(by_id(70), None, "Python 2 is not in the catalog");
    }

    #[test]
    fn ids_are_unique_and_every_runbox_language_exists() {
        let catalog = runbox_engine::Catalog::embedded().unwrap();
        let mut seen = std::collections::HashSet::new();
        for l in LANGUAGES {
            assert!(seen.insert(l.id), "id {} twice", l.id);
            assert!(
                catalog.get(l.runbox).is_ok(),
                "{} is not in the catalog",
                l.runbox
            );
        }
        for language in catalog.languages() {
            assert!(
                id_of(&language.id).is_some(),
                "{} has no Judge0 id",
                language.id
            );
        }
    }
}
