//! The PostgreSQL store (being written on the store branch; the SQLite store comes
//! first).

use crate::error::Result;

/// The PostgreSQL store, shared by the nodes of a fleet (not implemented yet).
pub struct PostgresStore;

impl PostgresStore {
    /// Connects and migrates (not implemented yet: always fails).
    pub async fn connect(url: &str) -> Result<PostgresStore> {
        Err(crate::Error::UnsupportedUrl(crate::redact_url(url)))
    }
}
