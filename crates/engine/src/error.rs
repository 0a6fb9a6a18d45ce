//! The one error type of the engine crate.

use std::path::PathBuf;

/// What can stop the engine from producing a result.
///
/// A program that fails to compile or run is not an error: that is a
/// [`RunResult`](crate::RunResult) with a status. Errors are about the request
/// (unknown language, bad file names, limits), the catalog, or the host.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No catalog entry has this id, alias or extension.
    #[error("unknown language '{name}'{}", suggest(.suggestions))]
    UnknownLanguage {
        /// What the user asked for.
        name: String,
        /// The closest catalog ids, best first.
        suggestions: Vec<String>,
    },

    /// The language is in the catalog but its packages are not installed here.
    #[error(
        "{name} is not installed on this host ({missing} is missing): install it with `{install}`"
    )]
    NotInstalled {
        /// The language's display name.
        name: String,
        /// The first program or path found missing.
        missing: String,
        /// The command that installs it.
        install: String,
    },

    /// The requested version is not the installed one.
    #[error("{name} {wanted} is not available: this host has {name} {installed}")]
    VersionUnavailable {
        /// The language's display name.
        name: String,
        /// The version asked for.
        wanted: String,
        /// The version installed (or "an unknown version").
        installed: String,
    },

    /// The caller of a live job cancelled it (went away) before it ended.
    #[error("the job was cancelled by its caller")]
    Cancelled,

    /// The job itself is malformed: a file name, a size, a count, a limit.
    #[error("{message}")]
    InvalidJob {
        /// The request field at fault, e.g. `files[1].name`.
        field: String,
        /// What is wrong and how to fix it.
        message: String,
    },

    /// A catalog file is malformed.
    #[error("language file {file}: {message}")]
    Catalog {
        /// The file (or embedded file name).
        file: String,
        /// What is wrong.
        message: String,
    },

    /// A catalog directory could not be read.
    #[error("cannot read language files in {}: {source}", path.display())]
    CatalogDir {
        /// The directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },

    /// Writing the job's files into its work directory failed.
    #[error("cannot write {}: {source}", path.display())]
    WorkDir {
        /// The host path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },

    /// The sandbox could not run a stage.
    #[error("the {stage} stage could not run: {source}")]
    Sandbox {
        /// `setup` (the work volume), `compile` or `run`.
        stage: &'static str,
        /// The sandbox's error.
        #[source]
        source: runbox_sandbox::Error,
    },
}

/// The engine crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An [`Error::InvalidJob`] about `field`.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::InvalidJob {
            field: field.into(),
            message: message.into(),
        }
    }
}

fn suggest(suggestions: &[String]) -> String {
    match suggestions {
        [] => "; `runbox languages` lists them all".to_string(),
        _ => format!(
            "; did you mean {}? (`runbox languages` lists them all)",
            suggestions.join(", ")
        ),
    }
}
