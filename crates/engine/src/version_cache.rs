//! Versions remembered across runbox processes: detecting one starts the
//! language in a box (a JVM: ~0.4 s), too slow to repeat for every `runbox run`.
//!
//! An entry is valid while its key matches: the version command and, for each
//! tool the language starts, its path, size and modification time. Upgrading a
//! package changes them, and the version is detected again. Only languages that
//! are installed are remembered.

use std::fs;
use std::path::PathBuf;

use crate::catalog::Language;
use crate::installation::{Installation, find_program, tools};

/// A directory of one file per language: the key line, then the version line.
#[derive(Debug, Clone)]
pub(crate) struct VersionCache {
    dir: PathBuf,
}

impl VersionCache {
    pub(crate) fn new(dir: impl Into<PathBuf>) -> Self {
        VersionCache { dir: dir.into() }
    }

    /// The remembered installation of `language`, if its tools have not changed.
    pub(crate) fn get(&self, language: &Language) -> Option<Installation> {
        let key = key(language)?;
        let text = fs::read_to_string(self.file(language)).ok()?;
        let (stored_key, version) = text.split_once('\n')?;
        if stored_key != key {
            return None;
        }
        let version = version.trim_end_matches('\n');
        Some(Installation::Installed {
            version: (!version.is_empty()).then(|| version.to_string()),
        })
    }

    /// Remembers an installed language; failures only cost a detection next time.
    pub(crate) fn put(&self, language: &Language, installation: &Installation) {
        let (Installation::Installed { version }, Some(key)) = (installation, key(language)) else {
            return;
        };
        let text = format!("{key}\n{}\n", version.as_deref().unwrap_or(""));
        let file = self.file(language);
        let temporary = file.with_extension(format!("tmp{}", std::process::id()));
        let written = fs::create_dir_all(&self.dir)
            .and_then(|()| fs::write(&temporary, text))
            .and_then(|()| fs::rename(&temporary, &file));
        if let Err(err) = written {
            let _ = fs::remove_file(&temporary);
            tracing::debug!("cannot remember the version of {}: {err}", language.id);
        }
    }

    fn file(&self, language: &Language) -> PathBuf {
        self.dir.join(format!("{}.version", language.key()))
    }
}

/// What the version depends on, on one line; `None` when a tool is missing.
pub(crate) fn key(language: &Language) -> Option<String> {
    let mut key = language.version_command();
    // A runtime's digest names all of its files at once.
    if let Some((_, digest)) = &language.root {
        key.push_str(&format!(" | runtime {digest}"));
    }
    for tool in tools(language) {
        let (path, stat) = find_program(language.runtime_root(), tool)?;
        key.push_str(&format!(
            " | {} {} {}.{}",
            path.display(),
            stat.st_size,
            stat.st_mtime,
            stat.st_mtime_nsec
        ));
    }
    Some(key.replace('\n', " "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shell(version_command: &str) -> Language {
        Language::parse(
            &format!(
                "id = \"shell\"\nname = \"Shell\"\nextensions = [\"sh\"]\npackages = [\"dash\"]\nsource_file = \"main.sh\"\nrun = [\"sh\", \"{{entry}}\"]\nversion = {version_command}\n"
            ),
            "test",
        )
        .unwrap()
    }

    #[test]
    fn a_remembered_version_is_used_until_the_language_changes() {
        let dir = tempfile::tempdir().unwrap();
        let cache = VersionCache::new(dir.path());
        let language = shell(r#"["sh", "-c", "echo 1.0"]"#);
        assert_eq!(cache.get(&language), None);
        let installed = Installation::Installed {
            version: Some("1.0".into()),
        };
        cache.put(&language, &installed);
        assert_eq!(cache.get(&language), Some(installed));
        let changed = shell(r#"["sh", "-c", "echo 2.0"]"#);
        assert_eq!(cache.get(&changed), None, "another version command");
    }

    #[test]
    fn a_language_that_is_not_installed_is_not_remembered() {
        let dir = tempfile::tempdir().unwrap();
        let cache = VersionCache::new(dir.path());
        let language = shell(r#"["sh", "-c", "echo 1.0"]"#);
        cache.put(
            &language,
            &Installation::Missing {
                missing: "sh".into(),
            },
        );
        assert_eq!(cache.get(&language), None);
    }
}
