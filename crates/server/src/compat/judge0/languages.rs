//! Judge0 CE's language ids for the languages runbox has.
//!
//! Judge0 gives each compiler version its own id; clients hard-code them. Ids 45 to
//! 89 and their versions are Judge0 CE 1.13.1's seeds (`db/languages/active.rb` in
//! the judge0 repository); ids 90 on are those of Judge0 CE 1.14.0, which serves
//! them but does not publish its seeds (the official Python SDK maps PYTHON to 71
//! for 1.13.1 and to 100 for 1.14.0, CPP to 54 and 105, JAVA to 62 and 91). Every
//! id that names a language runbox has is accepted and runs the installed version
//! closest to Judge0's; ids of compilers runbox lacks (Plain Text, Executable,
//! FreeBASIC, Clang's C and C++, VB.NET, F#, Python 2, Dart, ...) are absent.
//! Languages Judge0 CE lacks get ids from 1001 on. The archived ids (1 to 42) and
//! Judge0 Extra CE's ids (which reuse 1 to 25 for other languages) are not served.

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
    /// runbox's own ids (1001 on) and for ids whose compiler runbox runs under
    /// another name (DMD's D, Clang's Objective-C), which run whatever is installed.
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
    // Judge0's D is DMD 2.089.1 and its Objective-C is Clang 7.0.1: runbox has GDC
    // and GCC's gobjc, whose version numbers are not comparable to those.
    lang(56, "d", "D (GDC {v}, for DMD 2.089.1)"),
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
    at(77, "cobol", "COBOL (GnuCOBOL {v})", "2.2"),
    lang(79, "objc", "Objective-C (GCC {v}, for Clang 7.0.1)"),
    at(85, "perl", "Perl ({v})", "5.28.1"),
    at(68, "php", "PHP ({v})", "7.4.1"),
    at(98, "php", "PHP ({v})", "8.3.11"),
    at(69, "gprolog", "Prolog (GNU Prolog {v})", "1.4.5"),
    at(71, "python", "Python ({v})", "3.8.1"),
    at(92, "python", "Python ({v})", "3.11.2"),
    at(100, "python", "Python ({v})", "3.12.5"),
    at(109, "python", "Python ({v})", "3.13.2"),
    at(80, "r", "R ({v})", "4.0.0"),
    at(99, "r", "R ({v})", "4.4.1"),
    at(72, "ruby", "Ruby ({v})", "2.7.0"),
    at(73, "rust", "Rust ({v})", "1.40.0"),
    at(108, "rust", "Rust ({v})", "1.85.0"),
    at(81, "scala", "Scala ({v})", "2.13.2"),
    at(112, "scala", "Scala ({v})", "3.4.2"),
    at(82, "sqlite", "SQL (SQLite {v})", "3.27.2"),
    // Swift 6's compiler builds in the Swift 5 language mode by default.
    at(83, "swift", "Swift ({v})", "5.2.3"),
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
    lang(1009, "prolog", "Prolog (SWI-Prolog {v})"),
    lang(1010, "basic", "BASIC (yabasic {v})"),
    lang(1011, "chezscheme", "Scheme (Chez Scheme {v})"),
    lang(1012, "chicken", "Scheme (CHICKEN {v})"),
    lang(1013, "clisp", "Common Lisp (CLISP {v})"),
    lang(1014, "coffeescript", "CoffeeScript ({v})"),
    lang(1015, "dash", "Dash ({v})"),
    lang(1016, "ecl", "Common Lisp (ECL {v})"),
    lang(1017, "elisp", "Emacs Lisp (Emacs {v})"),
    lang(1018, "elvish", "Elvish ({v})"),
    lang(1019, "fennel", "Fennel ({v})"),
    lang(1020, "fish", "fish ({v})"),
    lang(1021, "forth", "Forth (Gforth {v})"),
    lang(1022, "gp", "PARI/GP ({v})"),
    lang(1023, "haxe", "Haxe ({v})"),
    lang(1024, "hy", "Hy ({v})"),
    lang(1025, "icon", "Icon ({v})"),
    lang(1026, "janet", "Janet ({v})"),
    lang(1027, "jq", "jq ({v})"),
    lang(1028, "ksh", "KornShell (ksh 93u+m/{v})"),
    lang(1029, "llvm", "LLVM IR (Clang {v})"),
    lang(1030, "luajit", "LuaJIT ({v})"),
    lang(1031, "micropython", "MicroPython ({v})"),
    lang(1032, "mksh", "mksh (R{v})"),
    lang(1033, "modula2", "Modula-2 (GNU Modula-2 {v})"),
    lang(1034, "newlisp", "newLISP ({v})"),
    lang(1035, "nickle", "Nickle ({v})"),
    lang(1036, "picolisp", "PicoLisp ({v})"),
    lang(1037, "pike", "Pike ({v})"),
    lang(1038, "raku", "Raku (Rakudo {v})"),
    lang(1039, "rc", "rc ({v})"),
    lang(1040, "rexx", "Rexx (Regina {v})"),
    lang(1041, "sml", "Standard ML (Poly/ML {v})"),
    lang(1042, "tcsh", "tcsh ({v})"),
    lang(1043, "vala", "Vala ({v})"),
    lang(1044, "verilog", "Verilog (Icarus Verilog {v})"),
    lang(1045, "zsh", "Zsh ({v})"),
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
    fn ids_carry_the_language_and_version_of_judge0_ce_1_13_1_seeds() {
        // From judge0's db/languages/active.rb: (id, runbox language, version).
        for (id, runbox, version) in [
            (45, "nasm", "2.14.02"),
            (46, "bash", "5.0.0"),
            (50, "c", "9.2.0"),
            (54, "cpp", "9.2.0"),
            (51, "csharp", "6.6.0"),
            (62, "java", "13.0.1"),
            (63, "javascript", "12.14.0"),
            (69, "gprolog", "1.4.5"),
            (71, "python", "3.8.1"),
            (73, "rust", "1.40.0"),
            (77, "cobol", "2.2"),
            (86, "clojure", "1.10.1"),
            (88, "groovy", "3.0.3"),
        ] {
            let language = by_id(id).unwrap_or_else(|| panic!("{id} is served"));
            assert_eq!(
                (language.runbox, language.version),
                (runbox, version),
                "{id}"
            );
        }
        // DMD's D and Clang's Objective-C run GDC and gobjc, and say so.
        assert_eq!(by_id(56).unwrap().runbox, "d");
        assert!(
            by_id(56)
                .unwrap()
                .display_name(Some("12.2.0"))
                .contains("for DMD 2.089.1")
        );
        assert_eq!(by_id(79).unwrap().runbox, "objc");
        // Plain Text, Executable, FreeBASIC, Clang's C and C++, Python 2, VB.NET,
        // F# and Dart have nothing behind them.
        for absent in [43, 44, 47, 70, 75, 76, 84, 87, 90] {
            assert_eq!(by_id(absent), None, "{absent}");
        }
    }

    #[test]
    fn an_id_runs_the_closest_installed_version_of_its_major_line_and_says_so() {
        let catalog = runbox_engine::Catalog::embedded().unwrap();
        let python = catalog.get("python").unwrap();
        let installed = |versions: &[&str]| -> Vec<(Arc<Language>, Installation)> {
            versions
                .iter()
                .map(|v| {
                    (
                        python.clone(),
                        Installation::Installed {
                            version: Some(v.to_string()),
                        },
                    )
                })
                .collect()
        };
        let versions = installed(&["3.11.2", "3.13.5", "3.14.0"]);
        let version_of = |id: u32| {
            pick(by_id(id).unwrap(), &versions)
                .and_then(|(_, i)| i.version())
                .map(str::to_string)
        };
        assert_eq!(version_of(92).as_deref(), Some("3.11.2"), "3.11.2 is exact");
        assert_eq!(
            version_of(71).as_deref(),
            Some("3.11.2"),
            "3.8 -> the closest 3.x"
        );
        assert_eq!(
            version_of(100).as_deref(),
            Some("3.13.5"),
            "3.12 -> 3.11 or 3.13: the newer"
        );
        assert_eq!(version_of(109).as_deref(), Some("3.13.5"));
        assert_eq!(
            by_id(71).unwrap().display_name(Some("3.11.2")),
            "Python (3.11.2, for 3.8.1)"
        );
        assert_eq!(
            by_id(92).unwrap().display_name(Some("3.11.2")),
            "Python (3.11.2)"
        );
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
