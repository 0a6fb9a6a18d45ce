//! The one error type of the store crate.

/// What can go wrong talking to the database.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The URL names no database runbox supports.
    #[error(
        "unsupported database URL '{0}': use sqlite://PATH (the embedded default) or postgres://USER@HOST/DB"
    )]
    UnsupportedUrl(String),

    /// Connecting failed.
    #[error("cannot connect to {url}: {source}")]
    Connect {
        /// The URL, password redacted.
        url: String,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },

    /// Applying the migrations failed.
    #[error("cannot migrate the database schema: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),

    /// A query failed.
    #[error("database error while trying to {action}: {source}")]
    Query {
        /// What the store was doing, e.g. `claim jobs`.
        action: &'static str,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },

    /// A stored value could not be read back.
    #[error("corrupt {what} in the database: {message}")]
    Corrupt {
        /// Which value.
        what: &'static str,
        /// What is wrong.
        message: String,
    },

    /// A key name is taken.
    #[error("an API key named '{0}' already exists")]
    DuplicateKeyName(String),
}

/// The store crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
