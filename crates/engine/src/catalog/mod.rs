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

/// Every language runbox knows, found by id, alias, extension or shebang.
#[derive(Debug, Clone)]
pub struct Catalog {
    /// Sorted by id.
    languages: Vec<Arc<Language>>,
    /// Ids and aliases to an index into `languages`.
    names: HashMap<String, usize>,
}

impl Catalog {
    /// The catalog built into the binary.
    pub fn embedded() -> Result<Catalog> {
        Catalog::load(None)
    }

    /// The embedded catalog, with the `*.toml` files of `dir` added; a file whose
    /// `id` is already known replaces that entry.
    pub fn load(dir: Option<&Path>) -> Result<Catalog> {
        let mut by_id: HashMap<String, Language> = HashMap::new();
        for (file, text) in EMBEDDED {
            let language = Language::parse(text, file).map_err(|message| Error::Catalog {
                file: file.to_string(),
                message,
            })?;
            if by_id.insert(language.id.clone(), language).is_some() {
                return Err(Error::Catalog {
                    file: file.to_string(),
                    message: "another embedded file has the same id".into(),
                });
            }
        }
        if let Some(dir) = dir {
            for language in read_dir(dir)? {
                by_id.insert(language.id.clone(), language);
            }
        }
        Catalog::from_languages(by_id.into_values().collect())
    }

    /// A catalog of exactly these languages; ids and aliases must not clash.
    pub fn from_languages(mut languages: Vec<Language>) -> Result<Catalog> {
        languages.sort_by(|a, b| a.id.cmp(&b.id));
        let mut names = HashMap::new();
        for (index, language) in languages.iter().enumerate() {
            for name in std::iter::once(&language.id).chain(&language.aliases) {
                if let Some(other) = names.insert(name.clone(), index) {
                    return Err(Error::Catalog {
                        file: language.origin.clone(),
                        message: format!(
                            "the name '{name}' is also used by '{}'",
                            languages[other].id
                        ),
                    });
                }
            }
        }
        Ok(Catalog {
            languages: languages.into_iter().map(Arc::new).collect(),
            names,
        })
    }

    /// Every language, sorted by id.
    pub fn languages(&self) -> &[Arc<Language>] {
        &self.languages
    }

    /// The language with this id or alias (case-insensitive), or an error that
    /// suggests the closest names.
    pub fn get(&self, name: &str) -> std::result::Result<&Arc<Language>, JobError> {
        let wanted = name.trim().to_lowercase();
        match self.names.get(&wanted) {
            Some(&index) => Ok(&self.languages[index]),
            None => Err(JobError::UnknownLanguage {
                name: name.to_string(),
                suggestions: self.closest(&wanted),
            }),
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
            let id = &self.languages[self.names[known]].id;
            if !ids.contains(id) {
                ids.push(id.clone());
            }
        }
        ids.truncate(3);
        ids
    }
}

/// Reads every `*.toml` of an operator's directory.
fn read_dir(dir: &Path) -> Result<Vec<Language>> {
    let entries = std::fs::read_dir(dir).map_err(|source| Error::CatalogDir {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut languages = Vec::new();
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
        let language = Language::parse(&text, &origin).map_err(|message| Error::Catalog {
            file: origin.clone(),
            message,
        })?;
        languages.push(language);
    }
    Ok(languages)
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
            assert!(std::ptr::eq(
                catalog.get(&language.id).unwrap().as_ref(),
                language.as_ref()
            ));
        }
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
