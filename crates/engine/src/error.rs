//! The engine's two error types: a client's mistake ([`JobError`]) and the host
//! failing ([`Error`]).
//!
//! They are separate types on purpose: [`Engine::check`](crate::Engine::check)
//! answers only [`JobError`]s, and once a job is checked the engine can fail only
//! for reasons of the host, so no caller can present one as the other.

use std::path::PathBuf;

/// Why a job cannot run as asked: the request is at fault, not the host.
///
/// A program that fails to compile or run is not an error: that is a
/// [`RunResult`](crate::RunResult) with a status.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum JobError {
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
        /// The request field that named the language (`language`, `checker.language`).
        field: String,
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

    /// The job itself is malformed: a file name, a size, a count, a limit.
    #[error("{message}")]
    Invalid {
        /// The request field at fault, e.g. `files[1].name`.
        field: String,
        /// What is wrong and how to fix it.
        message: String,
    },
}

impl JobError {
    /// A [`JobError::Invalid`] about `field`.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        JobError::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }

    /// The request field at fault.
    pub fn field(&self) -> &str {
        match self {
            JobError::UnknownLanguage { .. } => "language",
            JobError::NotInstalled { field, .. } => field,
            JobError::VersionUnavailable { .. } => "version",
            JobError::Invalid { field, .. } => field,
        }
    }

    /// The same error about a field of a part of the request (`checker.source`
    /// for a checker's `source`).
    pub(crate) fn within(self, prefix: &str) -> Self {
        match self {
            JobError::Invalid { field, message } => JobError::Invalid {
                field: format!("{prefix}.{field}"),
                message,
            },
            JobError::UnknownLanguage { name, suggestions } => JobError::Invalid {
                field: format!("{prefix}.language"),
                message: JobError::UnknownLanguage { name, suggestions }.to_string(),
            },
            JobError::NotInstalled {
                name,
                missing,
                install,
                ..
            } => JobError::NotInstalled {
                name,
                missing,
                install,
                field: format!("{prefix}.language"),
            },
            other => other,
        }
    }
}

/// What stops a checked job from producing a result: the host, never the request.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The caller of a live job cancelled it (went away) before it ended.
    #[error("the job was cancelled by its caller")]
    Cancelled,

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

    /// A runtime the job needs is gone (removed after the job was checked).
    #[error("the runtime '{name}' cannot be used: {message}")]
    Runtime {
        /// Its name.
        name: String,
        /// What went wrong.
        message: String,
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

/// The engine crate's result type (host errors).
pub type Result<T, E = Error> = std::result::Result<T, E>;

fn suggest(suggestions: &[String]) -> String {
    match suggestions {
        [] => "; `runbox languages` lists them all".to_string(),
        _ => format!(
            "; did you mean {}? (`runbox languages` lists them all)",
            suggestions.join(", ")
        ),
    }
}

/// Either failure of a job run in one go ([`Engine::check_and_run`](crate::Engine::check_and_run)):
/// the request's or the host's, still told apart.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// The job was refused by its check.
    #[error(transparent)]
    Job(#[from] JobError),
    /// The host failed while running it.
    #[error(transparent)]
    Host(#[from] Error),
}
