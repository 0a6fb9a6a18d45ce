//! Judge0 CE's language ids for the languages runbox has.
//!
//! Judge0 gives each compiler version its own id; clients hard-code them (the
//! official SDK maps `PYTHON` to 71 for 1.13.1 and to 113 for 1.14.0). Every id of
//! either release that names a language runbox has is accepted and runs that
//! language's installed version. Languages Judge0 CE lacks get ids from 1001 on.

/// One Judge0 language id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Judge0Language {
    /// Judge0's id.
    pub id: u32,
    /// The runbox catalog id it runs.
    pub runbox: &'static str,
    /// Judge0's name, with `{v}` for the installed version.
    pub name: &'static str,
}

const fn lang(id: u32, runbox: &'static str, name: &'static str) -> Judge0Language {
    Judge0Language { id, runbox, name }
}

/// Every id, the main one of each language first.
pub const LANGUAGES: &[Judge0Language] = &[
    lang(45, "nasm", "Assembly (NASM {v})"),
    lang(46, "bash", "Bash ({v})"),
    lang(50, "c", "C (GCC {v})"),
    lang(48, "c", "C (GCC {v})"),
    lang(49, "c", "C (GCC {v})"),
    lang(103, "c", "C (GCC {v})"),
    // The official SDK's C++ for Judge0 1.13.1 is 52: the main id is the one
    // clients pick, the others are listed as archived aliases.
    lang(52, "cpp", "C++ (GCC {v})"),
    lang(54, "cpp", "C++ (GCC {v})"),
    lang(53, "cpp", "C++ (GCC {v})"),
    lang(105, "cpp", "C++ (GCC {v})"),
    lang(51, "csharp", "C# (Mono {v})"),
    lang(86, "clojure", "Clojure ({v})"),
    lang(55, "commonlisp", "Common Lisp (SBCL {v})"),
    lang(56, "d", "D (GDC {v})"),
    lang(57, "elixir", "Elixir ({v})"),
    lang(58, "erlang", "Erlang (OTP {v})"),
    lang(59, "fortran", "Fortran (GFortran {v})"),
    lang(60, "go", "Go ({v})"),
    lang(95, "go", "Go ({v})"),
    lang(106, "go", "Go ({v})"),
    lang(107, "go", "Go ({v})"),
    lang(88, "groovy", "Groovy ({v})"),
    lang(61, "haskell", "Haskell (GHC {v})"),
    lang(62, "java", "Java (OpenJDK {v})"),
    lang(91, "java", "Java (JDK {v})"),
    lang(63, "javascript", "JavaScript (Node.js {v})"),
    lang(93, "javascript", "JavaScript (Node.js {v})"),
    lang(97, "javascript", "JavaScript (Node.js {v})"),
    lang(102, "javascript", "JavaScript (Node.js {v})"),
    lang(78, "kotlin", "Kotlin ({v})"),
    lang(111, "kotlin", "Kotlin ({v})"),
    lang(64, "lua", "Lua ({v})"),
    lang(89, "multifile", "Multi-file program"),
    lang(65, "ocaml", "OCaml ({v})"),
    lang(66, "octave", "Octave ({v})"),
    lang(67, "pascal", "Pascal (FPC {v})"),
    lang(85, "perl", "Perl ({v})"),
    lang(68, "php", "PHP ({v})"),
    lang(98, "php", "PHP ({v})"),
    lang(69, "prolog", "Prolog (SWI-Prolog {v})"),
    lang(71, "python", "Python ({v})"),
    lang(92, "python", "Python ({v})"),
    lang(100, "python", "Python ({v})"),
    lang(109, "python", "Python ({v})"),
    lang(113, "python", "Python ({v})"),
    lang(80, "r", "R ({v})"),
    lang(99, "r", "R ({v})"),
    lang(72, "ruby", "Ruby ({v})"),
    lang(73, "rust", "Rust ({v})"),
    lang(108, "rust", "Rust ({v})"),
    lang(81, "scala", "Scala ({v})"),
    lang(112, "scala", "Scala ({v})"),
    lang(82, "sqlite", "SQL (SQLite {v})"),
    lang(74, "typescript", "TypeScript ({v})"),
    lang(94, "typescript", "TypeScript ({v})"),
    lang(101, "typescript", "TypeScript ({v})"),
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

/// Whether `language` is the main id of its runbox language (the others alias it).
pub fn is_main(language: &Judge0Language) -> bool {
    id_of(language.runbox) == Some(language.id)
}

impl Judge0Language {
    /// Its display name with the installed version.
    pub fn display_name(&self, version: Option<&str>) -> String {
        self.name.replace("{v}", version.unwrap_or("not installed"))
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
