//! The language catalog: the TOML files of `languages/`, embedded at build time,
//! plus an operator's directory that adds or replaces entries.

mod language;
mod pattern;
mod template;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

pub use language::Language;
pub(crate) use template::Values;

use crate::error::{Error, JobError, Result};

include!(concat!(env!("OUT_DIR"), "/embedded_languages.rs"));

/// Every language runbox knows, in every version its catalog describes, found
/// by id, alias, extension or shebang.
///
/// One id may have several entries, one per runtime (its `variant`): the host's
/// and, say, `trixie`'s. A variant's file needs only what differs from the
/// host entry of the same id (`id`, `runtime`, and e.g. `packages` or a `run`
/// path): the rest is taken from it.
#[derive(Debug, Clone)]
pub struct Catalog {
    /// Sorted by id, then variant (the host's first).
    languages: Vec<Arc<Language>>,
    /// Ids and aliases to the indexes of every entry of that id.
    names: HashMap<String, Vec<usize>>,
}

/// A catalog file before it is parsed: where it came from, and its table.
struct CatalogFile {
    origin: String,
    table: toml::Table,
}

impl CatalogFile {
    fn read(origin: &str, text: &str) -> Result<CatalogFile> {
        let table: toml::Table = toml::from_str(text).map_err(|e| Error::Catalog {
            file: origin.to_string(),
            message: e.to_string(),
        })?;
        Ok(CatalogFile {
            origin: origin.to_string(),
            table,
        })
    }

    fn id(&self) -> &str {
        self.table.get("id").and_then(|v| v.as_str()).unwrap_or("")
    }

    fn runtime(&self) -> Option<&str> {
        self.table.get("runtime").and_then(|v| v.as_str())
    }
}

/// Keys a variant never takes from its host entry: they say what the variant is.
const OWN_KEYS: &[&str] = &["runtime", "default", "core"];

impl Catalog {
    /// The catalog built into the binary.
    pub fn embedded() -> Result<Catalog> {
        Catalog::load(None)
    }

    /// The embedded catalog, with the `*.toml` files of `dir` added; a file whose
    /// `id` and `runtime` are already known replaces that entry.
    pub fn load(dir: Option<&Path>) -> Result<Catalog> {
        let mut files: Vec<CatalogFile> = Vec::new();
        let mut seen: HashMap<(String, Option<String>), usize> = HashMap::new();
        let mut add = |file: CatalogFile, replace: bool| -> Result<()> {
            let key = (file.id().to_string(), file.runtime().map(str::to_string));
            match seen.get(&key) {
                Some(&at) if replace => files[at] = file,
                Some(_) => {
                    return Err(Error::Catalog {
                        file: file.origin,
                        message: "another embedded file has the same id and runtime".into(),
                    });
                }
                None => {
                    seen.insert(key, files.len());
                    files.push(file);
                }
            }
            Ok(())
        };
        for (origin, text) in EMBEDDED {
            add(CatalogFile::read(origin, text)?, false)?;
        }
        if let Some(dir) = dir {
            for (origin, text) in read_dir(dir)? {
                add(CatalogFile::read(&origin, &text)?, true)?;
            }
        }
        let hosts: HashMap<String, toml::Table> = files
            .iter()
            .filter(|f| f.runtime().is_none())
            .map(|f| (f.id().to_string(), f.table.clone()))
            .collect();
        let mut languages = Vec::with_capacity(files.len());
        for file in &files {
            let mut table = file.table.clone();
            if file.runtime().is_some()
                && let Some(host) = hosts.get(file.id())
            {
                for (key, value) in host {
                    if !OWN_KEYS.contains(&key.as_str()) && !table.contains_key(key) {
                        table.insert(key.clone(), value.clone());
                    }
                }
            }
            let text = toml::to_string(&table).map_err(|e| Error::Catalog {
                file: file.origin.clone(),
                message: e.to_string(),
            })?;
            languages.push(Language::parse(&text, &file.origin).map_err(|message| {
                Error::Catalog {
                    file: file.origin.clone(),
                    message,
                }
            })?);
        }
        Catalog::from_languages(languages)
    }

    /// A catalog of exactly these languages; a name may not belong to two ids,
    /// and an id may not have two entries of one runtime.
    pub fn from_languages(mut languages: Vec<Language>) -> Result<Catalog> {
        languages.sort_by(|a, b| {
            (&a.id, a.runtime.is_some(), a.variant()).cmp(&(
                &b.id,
                b.runtime.is_some(),
                b.variant(),
            ))
        });
        let mut names: HashMap<String, Vec<usize>> = HashMap::new();
        for (index, language) in languages.iter().enumerate() {
            if index > 0
                && languages[index - 1].id == language.id
                && languages[index - 1].variant() == language.variant()
            {
                return Err(Error::Catalog {
                    file: language.origin.clone(),
                    message: format!(
                        "'{}' has two entries for the runtime '{}'",
                        language.id,
                        language.variant()
                    ),
                });
            }
            for name in std::iter::once(&language.id).chain(&language.aliases) {
                let entries = names.entry(name.clone()).or_default();
                if let Some(&other) = entries.first()
                    && languages[other].id != language.id
                {
                    return Err(Error::Catalog {
                        file: language.origin.clone(),
                        message: format!(
                            "the name '{name}' is also used by '{}'",
                            languages[other].id
                        ),
                    });
                }
                if !entries.contains(&index) {
                    entries.push(index);
                }
            }
        }
        Ok(Catalog {
            languages: languages.into_iter().map(Arc::new).collect(),
            names,
        })
    }

    /// Every entry (each version of each language), sorted by id.
    pub fn languages(&self) -> &[Arc<Language>] {
        &self.languages
    }

    /// The entry of this id or alias (case-insensitive) a caller gets without
    /// choosing a version: the one marked `default`, else the host's, else the
    /// first; or an error that suggests the closest names.
    pub fn get(&self, name: &str) -> std::result::Result<&Arc<Language>, JobError> {
        let variants = self.variants(name)?;
        Ok(variants
            .iter()
            .find(|l| l.default)
            .or_else(|| variants.iter().find(|l| l.runtime.is_none()))
            .unwrap_or(&variants[0]))
    }

    /// Every entry of this id or alias: one per runtime.
    pub fn variants(&self, name: &str) -> std::result::Result<Vec<&Arc<Language>>, JobError> {
        let wanted = name.trim().to_lowercase();
        match self.names.get(&wanted) {
            Some(indexes) => Ok(indexes.iter().map(|&i| &self.languages[i]).collect()),
            None => Err(JobError::UnknownLanguage {
                name: name.to_string(),
                suggestions: self.closest(&wanted),
            }),
        }
    }

    /// The same catalog with each runtime entry's tree found by `find`
    /// (`(root, digest)` of an installed runtime; `None` leaves it missing).
    pub fn with_runtimes(
        &self,
        find: impl Fn(&str) -> Option<(std::path::PathBuf, String)>,
    ) -> Catalog {
        let languages = self
            .languages
            .iter()
            .map(|language| match &language.runtime {
                Some(runtime) => {
                    let mut found = Language::clone(language);
                    found.root = find(runtime);
                    Arc::new(found)
                }
                None => language.clone(),
            })
            .collect();
        Catalog {
            languages,
            names: self.names.clone(),
        }
    }

    /// The language of a file named `file_name` whose contents are `source`: by
    /// extension first, then by its `#!` line.
    pub fn detect(&self, file_name: &str, source: &[u8]) -> Option<&Arc<Language>> {
        let extension = Path::new(file_name)
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_lowercase);
        if let Some(ext) = extension {
            // Where two languages claim an extension, its default owner wins.
            let default_owner = self.languages.iter().find(|l| l.extensions[0] == ext);
            let any_owner = || self.languages.iter().find(|l| l.extensions.contains(&ext));
            if let Some(found) = default_owner.or_else(any_owner) {
                return Some(found);
            }
        }
        let interpreter = shebang_interpreter(source)?;
        self.languages
            .iter()
            .find(|l| l.shebang.contains(&interpreter))
    }

    /// Up to three ids or aliases that look like `name`, best first.
    fn closest(&self, name: &str) -> Vec<String> {
        let mut scored: Vec<(f64, &String)> = self
            .names
            .keys()
            .map(|known| (strsim::jaro_winkler(name, known), known))
            .filter(|(score, _)| *score >= 0.75)
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(b.1)));
        let mut ids: Vec<String> = Vec::new();
        for (_, known) in scored {
            let id = &self.languages[self.names[known][0]].id;
            if !ids.contains(id) {
                ids.push(id.clone());
            }
        }
        ids.truncate(3);
        ids
    }
}

/// Reads every `*.toml` of an operator's directory: `(origin, text)`.
fn read_dir(dir: &Path) -> Result<Vec<(String, String)>> {
    let entries = std::fs::read_dir(dir).map_err(|source| Error::CatalogDir {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut files = Vec::new();
    for entry in entries {
        let path = entry
            .map_err(|source| Error::CatalogDir {
                path: dir.to_path_buf(),
                source,
            })?
            .path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(&path).map_err(|e| Error::Catalog {
            file: origin.clone(),
            message: e.to_string(),
        })?;
        files.push((origin, text));
    }
    files.sort();
    Ok(files)
}

/// The interpreter named by a `#!` line: `python3` for `#!/usr/bin/python3` and
/// for `#!/usr/bin/env python3`.
fn shebang_interpreter(source: &[u8]) -> Option<String> {
    let rest = source.strip_prefix(b"#!")?;
    let line = rest.split(|&b| b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?;
    let mut words = line.split_whitespace();
    let program = words.next()?;
    let base = program.rsplit('/').next()?;
    let name = if base == "env" {
        words.find(|w| !w.starts_with('-'))?
    } else {
        base
    };
    Some(name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_catalog_parses_and_every_name_is_unique() {
        let catalog = Catalog::embedded().unwrap();
        for language in catalog.languages() {
            let variants = catalog.variants(&language.id).unwrap();
            assert!(
                variants
                    .iter()
                    .any(|v| std::ptr::eq(v.as_ref(), language.as_ref()))
            );
            // Without a version, a name means its entry marked default, else its
            // host entry when it has one.
            let chosen = catalog.get(&language.id).unwrap();
            if variants.iter().any(|v| v.default) {
                assert!(chosen.default, "{}", language.id);
            } else {
                let has_host = variants.iter().any(|v| v.runtime.is_none());
                assert_eq!(chosen.runtime.is_none(), has_host, "{}", language.id);
            }
        }
    }

    #[test]
    fn a_runtime_entry_inherits_what_it_does_not_say_from_the_host_entry() {
        let catalog = Catalog::embedded().unwrap();
        let variants = catalog.variants("python").unwrap();
        let trixie = variants
            .iter()
            .find(|l| l.variant() == "debian-trixie")
            .expect("python@debian-trixie is in the catalog");
        let host = catalog.get("python").unwrap();
        assert_eq!(trixie.source_file, host.source_file);
        assert_eq!(trixie.extensions, host.extensions);
        assert!(!trixie.core, "core is the host entry's alone");
    }

    #[test]
    fn a_runtime_entry_without_a_host_entry_is_whole_and_chosen_without_a_version() {
        let catalog = Catalog::embedded().unwrap();
        let janet = catalog.get("janet").unwrap();
        assert_eq!(janet.variant(), "debian-sid");
        assert_eq!(janet.name, "Janet");
        assert_eq!(janet.source_file, "main.janet");
        assert!(catalog.variants("janet").unwrap().len() == 1);
    }

    #[test]
    fn shebang_names_the_interpreter_directly_or_through_env() {
        assert_eq!(
            shebang_interpreter(b"#!/usr/bin/python3\nx").as_deref(),
            Some("python3")
        );
        assert_eq!(
            shebang_interpreter(b"#!/usr/bin/env -S node --x\n").as_deref(),
            Some("node")
        );
        assert_eq!(shebang_interpreter(b"print(1)"), None);
    }

    fn tiny(id: &str, aliases: &[&str], ext: &str) -> Language {
        let text = format!(
            "id = {id:?}\nname = {id:?}\naliases = {aliases:?}\nextensions = [{ext:?}]\nshebang = [{id:?}]\npackages = [\"p\"]\nsource_file = \"main.{ext}\"\nrun = [{id:?}, \"{{entry}}\"]\nversion = [{id:?}, \"--version\"]\n"
        );
        Language::parse(&text, "test").unwrap()
    }

    #[test]
    fn unknown_language_suggests_the_closest_ids() {
        let catalog = Catalog::from_languages(vec![
            tiny("python", &["py"], "py"),
            tiny("pypy", &[], "pypy"),
            tiny("c", &[], "c"),
        ])
        .unwrap();
        let err = catalog.get("pyhton").unwrap_err();
        match &err {
            JobError::UnknownLanguage { suggestions, .. } => assert_eq!(suggestions[0], "python"),
            other => panic!("{other}"),
        }
        assert!(err.to_string().contains("did you mean python"), "{err}");
    }

    #[test]
    fn lookup_is_by_id_alias_extension_or_shebang() {
        let catalog = Catalog::from_languages(vec![
            tiny("python", &["py", "python3"], "py"),
            tiny("c", &[], "c"),
        ])
        .unwrap();
        assert_eq!(catalog.get("Python3").unwrap().id, "python");
        assert_eq!(catalog.detect("a/b.PY", b"").unwrap().id, "python");
        assert_eq!(
            catalog
                .detect("script", b"#!/usr/bin/env python\n")
                .unwrap()
                .id,
            "python"
        );
        assert!(catalog.detect("script", b"echo").is_none());
    }

    #[test]
    fn a_shared_extension_goes_to_the_language_whose_default_it_is() {
        let mut perl = tiny("perl", &[], "pl");
        perl.extensions = vec!["pl".into(), "pm".into()];
        let mut prolog = tiny("aprolog", &[], "pro");
        prolog.extensions = vec!["pro".into(), "pl".into()];
        let catalog = Catalog::from_languages(vec![prolog, perl]).unwrap();
        assert_eq!(catalog.detect("x.pl", b"").unwrap().id, "perl");
        assert_eq!(catalog.detect("x.pro", b"").unwrap().id, "aprolog");
    }

    #[test]
    fn clashing_alias_is_refused() {
        let err = Catalog::from_languages(vec![tiny("c", &["x"], "c"), tiny("d", &["x"], "d")])
            .unwrap_err();
        assert!(err.to_string().contains("'x'"), "{err}");
    }
}
