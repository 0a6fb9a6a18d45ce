//! One catalog entry: how a language is compiled and run, read from its TOML file.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use super::pattern::Pattern;
use super::template::Template;
use crate::limits::{LimitOverrides, LimitTable};

/// A language of the catalog, validated.
#[derive(Debug, Clone)]
pub struct Language {
    /// Catalog id, e.g. `cpp`.
    pub id: String,
    /// Display name, e.g. `C++`.
    pub name: String,
    /// Other names users may give.
    pub aliases: Vec<String>,
    /// File extensions without the dot; the first is the default.
    pub extensions: Vec<String>,
    /// Interpreter names that identify a script by its `#!` line.
    pub shebang: Vec<String>,
    /// The Debian packages that provide it.
    pub packages: Vec<String>,
    /// Whether CI and `install-languages.sh --core` include it.
    pub core: bool,
    /// The file name of a source submitted without one.
    pub source_file: String,
    /// Whether the program can be given arguments.
    pub accepts_args: bool,
    /// Extra paths visible read-only in the box: of its runtime's tree when it
    /// runs on one (below /etc, /var/lib or /opt), else of the host.
    pub binds: Vec<PathBuf>,
    /// Paths of which one must exist for the language to be installed, `*`
    /// matching within one component: a compiler proper that a driver starts
    /// (gcc's `cc1obj`), which the driver's presence does not prove.
    pub needs_one_of: Vec<String>,
    /// Extra environment of every stage.
    pub env: Vec<(String, String)>,
    /// This language's defaults for the compile stage.
    pub compile_limits: LimitOverrides,
    /// This language's defaults for the run stage.
    pub run_limits: LimitOverrides,
    /// Text put before each of the user's sources to rename their `main`, when a
    /// job's harness asks (`{file}` is the file's name); `None`: not supported.
    pub rename_main: Option<String>,
    pub(crate) entry_name: Option<Rename>,
    pub(crate) main: Option<MainRule>,
    pub(crate) compile: Option<Template>,
    pub(crate) run: Template,
    pub(crate) version: Template,
    pub(crate) version_pattern: Pattern,
    /// Where the entry came from: an embedded file name or a host path.
    pub origin: String,
    /// The runtime it runs in (a name in the runtime store, e.g. `trixie`);
    /// `None`: the host's own /usr.
    pub runtime: Option<String>,
    /// Whether this is the version a job gets when it names none (otherwise the
    /// newest installed one).
    pub default: bool,
    /// The runtime's tree and digest, once the engine found it in its store.
    pub(crate) root: Option<(PathBuf, String)>,
}

/// Renames the entry file after what its source declares.
#[derive(Debug, Clone)]
pub(crate) struct Rename {
    pub pattern: Pattern,
    pub name: String,
}

/// Finds the `{main}` name in the entry file.
#[derive(Debug, Clone)]
pub(crate) struct MainRule {
    pub pattern: Option<Pattern>,
    pub default: String,
}

impl Language {
    /// Which version of the language this entry is: its runtime's name, or
    /// `host`. Unique among the entries of one id.
    pub fn variant(&self) -> &str {
        self.runtime.as_deref().unwrap_or(crate::runtime::HOST)
    }

    /// `id@variant`: this entry among every version of every language.
    pub fn key(&self) -> String {
        format!("{}@{}", self.id, self.variant())
    }

    /// The runtime's tree, when the entry runs in one that is installed.
    pub fn runtime_root(&self) -> Option<&std::path::Path> {
        self.root.as_ref().map(|(root, _)| root.as_path())
    }

    /// Whether the language has a compile stage.
    pub fn is_compiled(&self) -> bool {
        self.compile.is_some()
    }

    /// Whether the user may add compiler options: its compile command places
    /// `{options}`.
    pub fn takes_compiler_options(&self) -> bool {
        self.compile.as_ref().is_some_and(|c| c.takes_options())
    }

    /// Whether a file of this name is a source of this language (by extension).
    pub(crate) fn is_source(&self, name: &str) -> bool {
        std::path::Path::new(name)
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| self.extensions.iter().any(|x| x.eq_ignore_ascii_case(e)))
    }

    /// The shell command that installs its packages.
    pub fn install_command(&self) -> String {
        match &self.runtime {
            None => format!("apt-get install -y {}", self.packages.join(" ")),
            // The runtime's name is the Debian suite it is built from; the
            // install script gathers every entry's packages into one runtime.
            Some(runtime) => format!("scripts/install-languages.sh --runtime {runtime}"),
        }
    }

    /// The programs its commands start (`javac`, `java`), for the installed check.
    pub fn programs(&self) -> Vec<&str> {
        let mut programs: Vec<&str> = [self.compile.as_ref(), Some(&self.run), Some(&self.version)]
            .into_iter()
            .flatten()
            .filter_map(Template::program)
            .collect();
        let mut seen = std::collections::HashSet::new();
        programs.retain(|p| seen.insert(*p));
        programs
    }

    /// The version command, as written in the catalog.
    pub fn version_command(&self) -> String {
        self.version.to_string()
    }

    /// The version in the output of the version command.
    pub(crate) fn version_in<'t>(&self, output: &'t str) -> Option<&'t str> {
        self.version_pattern.first_capture(output)
    }

    /// The file name of the entry file named `name` whose contents are `source`.
    pub(crate) fn entry_file_name(&self, name: &str, source: &str) -> String {
        let Some(rename) = &self.entry_name else {
            return name.to_string();
        };
        let Some(caps) = rename.pattern.regex().and_then(|r| r.captures(source)) else {
            return name.to_string();
        };
        let first = caps.get(1).map_or("", |m| m.as_str());
        let file = rename.name.replace("{1}", first);
        // Keep the entry in its directory: only the file name changes.
        match name.rsplit_once('/') {
            Some((dir, _)) => format!("{dir}/{file}"),
            None => file,
        }
    }

    /// The `{main}` value for an entry file with this `stem` and `source`.
    pub(crate) fn main_name(&self, stem: &str, source: &str) -> String {
        let Some(rule) = &self.main else {
            return stem.to_string();
        };
        rule.pattern
            .as_ref()
            .and_then(|p| p.first_capture(source))
            .map(str::to_string)
            .unwrap_or_else(|| rule.default.replace("{stem}", stem))
    }
}

/// The TOML form of a catalog file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LanguageFile {
    id: String,
    name: String,
    #[serde(default)]
    aliases: Vec<String>,
    extensions: Vec<String>,
    #[serde(default)]
    shebang: Vec<String>,
    packages: Vec<String>,
    #[serde(default)]
    core: bool,
    source_file: String,
    #[serde(default = "yes")]
    accepts_args: bool,
    entry_name: Option<RenameFile>,
    main: Option<MainFile>,
    compile: Option<Vec<String>>,
    run: Vec<String>,
    version: Vec<String>,
    version_pattern: Option<String>,
    #[serde(default)]
    binds: Vec<PathBuf>,
    #[serde(default)]
    needs_one_of: Vec<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    #[serde(default)]
    compile_limits: LimitTable,
    #[serde(default)]
    run_limits: LimitTable,
    rename_main: Option<String>,
    runtime: Option<String>,
    #[serde(default)]
    default: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RenameFile {
    pattern: String,
    name: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MainFile {
    pattern: Option<String>,
    default: String,
}

/// The version of a tool is, unless told otherwise, its first dotted number.
const DEFAULT_VERSION_PATTERN: &str = r"(\d+(?:\.\d+)+)";

impl Language {
    /// Parses and validates one catalog file; the error says what is wrong.
    pub fn parse(text: &str, origin: &str) -> Result<Language, String> {
        let file: LanguageFile = toml::from_str(text).map_err(|e| e.to_string())?;
        let name_ok = |s: &str| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+-_.#".contains(&b))
        };
        if let Some(bad) = std::iter::once(&file.id)
            .chain(&file.aliases)
            .find(|n| !name_ok(n))
        {
            return Err(format!(
                "'{bad}' is not a valid id or alias (lower-case letters, digits, + - _ . #)"
            ));
        }
        if file.extensions.is_empty() {
            return Err("at least one extension is needed".into());
        }
        if file.packages.is_empty() {
            return Err("at least one Debian package is needed".into());
        }
        if file.source_file.is_empty() || file.source_file.contains('/') {
            return Err("source_file must be a plain file name".into());
        }
        let regex = |what: &str, p: &str| Pattern::new(p, what, 1);
        let entry_name = file
            .entry_name
            .map(|r| {
                if r.name.is_empty() || r.name.contains('/') {
                    return Err("entry_name.name must be a plain file name".to_string());
                }
                Ok(Rename {
                    // No group is fine: `{1}` is then empty (`name = "Main.kt"`).
                    pattern: Pattern::new(&r.pattern, "entry_name", 0)?,
                    name: r.name,
                })
            })
            .transpose()?;
        let main = file
            .main
            .map(|m| {
                Ok::<_, String>(MainRule {
                    pattern: m.pattern.as_deref().map(|p| regex("main", p)).transpose()?,
                    default: m.default,
                })
            })
            .transpose()?;
        let template =
            |what: &str, argv: &[String]| Template::parse(argv).map_err(|e| format!("{what}: {e}"));
        let version_pattern = regex(
            "version",
            file.version_pattern
                .as_deref()
                .unwrap_or(DEFAULT_VERSION_PATTERN),
        )?;
        if let Some(runtime) = &file.runtime
            && (runtime.is_empty() || runtime == crate::runtime::HOST || !name_ok(runtime))
        {
            return Err(format!(
                "runtime '{runtime}' is not a runtime name (lower-case letters, digits, + - _ .; `host` is the default)"
            ));
        }
        if let Some(bad) = file.binds.iter().find(|p| !p.is_absolute()) {
            return Err(format!("bind {} must be an absolute path", bad.display()));
        }
        if let Some(bad) = file.needs_one_of.iter().find(|p| !p.starts_with('/')) {
            return Err(format!("needs_one_of path {bad} must be absolute"));
        }
        // A box on a runtime takes its binds from the runtime's tree, and only
        // system paths can be taken from there: anything else would be the host's.
        if file.runtime.is_some()
            && let Some(bad) = file
                .binds
                .iter()
                .find(|p| !runbox_sandbox::is_system_path(p))
        {
            return Err(format!(
                "bind {} cannot be taken from the runtime: a runtime entry binds only paths below {} of its runtime (its /usr is the runtime's already)",
                bad.display(),
                runbox_sandbox::SYSTEM_PATH_ROOTS.join(", ")
            ));
        }
        Ok(Language {
            compile: file
                .compile
                .as_deref()
                .map(|c| template("compile", c))
                .transpose()?,
            run: template("run", &file.run)?,
            version: template("version", &file.version)?,
            version_pattern,
            compile_limits: file
                .compile_limits
                .parse()
                .map_err(|e| format!("compile_limits.{e}"))?,
            run_limits: file
                .run_limits
                .parse()
                .map_err(|e| format!("run_limits.{e}"))?,
            id: file.id,
            name: file.name,
            aliases: file.aliases,
            extensions: file.extensions,
            shebang: file.shebang,
            packages: file.packages,
            core: file.core,
            source_file: file.source_file,
            accepts_args: file.accepts_args,
            rename_main: file.rename_main,
            entry_name,
            main,
            binds: file.binds,
            needs_one_of: file.needs_one_of,
            env: file.env.into_iter().collect(),
            origin: origin.to_string(),
            runtime: file.runtime,
            default: file.default,
            root: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const JAVA: &str = r#"
id = "java"
name = "Java"
extensions = ["java"]
packages = ["default-jdk-headless"]
source_file = "Main.java"
entry_name = { pattern = '(?m)^\s*public\s+(?:final\s+)?class\s+(\w+)', name = "{1}.java" }
main = { pattern = '(?m)^\s*public\s+(?:final\s+)?class\s+(\w+)', default = "{stem}" }
compile = ["javac", "-d", ".", "{sources}"]
run = ["java", "-Xmx{heap_mb}m", "{main}"]
version = ["javac", "-version"]
[run_limits]
processes = 128
"#;

    #[test]
    fn java_entry_is_renamed_after_its_public_class() {
        let java = Language::parse(JAVA, "java.toml").unwrap();
        let source = "import x;\npublic class Hello {\n}";
        assert_eq!(java.entry_file_name("prog.java", source), "Hello.java");
        assert_eq!(
            java.entry_file_name("src/prog.java", source),
            "src/Hello.java"
        );
        assert_eq!(java.entry_file_name("prog.java", "class A {}"), "prog.java");
        assert_eq!(java.main_name("Hello", source), "Hello");
        assert_eq!(java.main_name("prog", "class A {}"), "prog");
        assert_eq!(java.run_limits.processes, Some(128));
        assert_eq!(java.programs(), ["javac", "java"]);
    }

    #[test]
    fn unknown_key_is_refused() {
        let text = format!("{JAVA}\ncolour = \"blue\"");
        assert!(Language::parse(&text, "x").is_err());
    }

    #[test]
    fn bad_id_is_refused() {
        let text = JAVA.replace("id = \"java\"", "id = \"Ja va\"");
        let err = Language::parse(&text, "x").unwrap_err();
        assert!(err.contains("Ja va"), "{err}");
    }

    #[test]
    fn a_runtime_entry_binding_a_path_outside_the_system_roots_is_refused() {
        let on_sid = |binds: &str| {
            let keys = format!("id = \"java\"\nruntime = \"debian-sid\"\nbinds = {binds}");
            Language::parse(&JAVA.replace("id = \"java\"", &keys), "x")
        };
        let err = on_sid(r#"["/usr/share/java"]"#).unwrap_err();
        assert!(
            err.contains("bind /usr/share/java cannot be taken from the runtime"),
            "{err}"
        );
        on_sid(r#"["/var/lib/ghc", "/etc/java"]"#).unwrap();
    }

    #[test]
    fn bad_placeholder_names_the_command() {
        let text = JAVA.replace("{main}", "{mian}");
        let err = Language::parse(&text, "x").unwrap_err();
        assert!(err.starts_with("run:"), "{err}");
    }
}
