//! API keys: how a request names its key, how keys are made and checked.
//!
//! A key is `rbx_` plus 32 random bytes in hex. The store keeps its SHA-256 only. The
//! webhook secret of a key is derived from the key itself (SHA-256 of
//! `runbox-webhook:` + key, hex), so its owner can verify signatures without a
//! second secret, and the store does not hold anything that would let it act as
//! the key.

use axum::http::HeaderMap;
use rand::RngCore;
use runbox_store::{ApiKey, Scope};
use sha2::{Digest, Sha256};

use crate::error::ApiError;

/// Who is calling.
#[derive(Debug, Clone)]
pub enum Caller {
    /// No key, allowed because no key exists and the listener is loopback.
    Anonymous {
        /// The client's address.
        addr: String,
    },
    /// A valid key.
    Key {
        /// The key's record.
        key: Box<ApiKey>,
        /// The client's address.
        addr: String,
    },
}

impl Caller {
    /// The key's id, or `None` for anonymous use.
    pub fn key_id(&self) -> Option<&str> {
        match self {
            Caller::Anonymous { .. } => None,
            Caller::Key { key, .. } => Some(&key.id),
        }
    }

    /// The client's address.
    pub fn addr(&self) -> &str {
        match self {
            Caller::Anonymous { addr } | Caller::Key { addr, .. } => addr,
        }
    }

    /// Whether the caller may do what `scope` allows. Anonymous callers (only
    /// possible on a loopback listener with no keys) may do everything.
    pub fn has(&self, scope: Scope) -> bool {
        match self {
            Caller::Anonymous { .. } => true,
            Caller::Key { key, .. } => key.scope == Scope::Admin || key.scope == scope,
        }
    }

    /// Refuses with 403 unless the caller has `scope`.
    pub fn require(&self, scope: Scope) -> Result<(), ApiError> {
        if self.has(scope) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "this API key lacks the '{}' scope",
                scope.as_str()
            )))
        }
    }

    /// The bucket its rate limit and concurrency cap count in.
    pub fn bucket(&self) -> String {
        match self {
            Caller::Anonymous { addr } => format!("anonymous:{addr}"),
            Caller::Key { key, .. } => format!("key:{}", key.id),
        }
    }
}

/// The WebSocket subprotocol prefix that carries an API key from a browser.
pub const SUBPROTOCOL_KEY_PREFIX: &str = "runbox.key.";

/// The key a request carries: `Authorization: Bearer K`, `X-API-Key: K`, (for
/// Judge0 clients) `X-Auth-Token: K`, or a WebSocket subprotocol `runbox.key.K`.
pub fn presented_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    if let Some(value) = headers.get(axum::http::header::AUTHORIZATION) {
        let text = value
            .to_str()
            .map_err(|_| ApiError::unauthorized("the Authorization header is not text"))?;
        let Some(token) = text
            .strip_prefix("Bearer ")
            .or_else(|| text.strip_prefix("bearer "))
        else {
            return Err(ApiError::unauthorized(
                "the Authorization header must be 'Bearer <API key>'",
            ));
        };
        return Ok(Some(token.trim().to_string()));
    }
    // Browsers cannot set headers on a WebSocket: they offer the key as a
    // subprotocol, `runbox.key.<API key>` (see docs/sessions.md).
    if let Some(value) = headers.get(axum::http::header::SEC_WEBSOCKET_PROTOCOL)
        && let Ok(text) = value.to_str()
        && let Some(key) = text
            .split(',')
            .find_map(|offered| offered.trim().strip_prefix(SUBPROTOCOL_KEY_PREFIX))
    {
        return Ok(Some(key.to_string()));
    }
    for name in ["x-api-key", "x-auth-token"] {
        if let Some(value) = headers.get(name) {
            let text = value
                .to_str()
                .map_err(|_| ApiError::unauthorized(format!("the {name} header is not text")))?;
            return Ok(Some(text.trim().to_string()));
        }
    }
    Ok(None)
}

/// SHA-256 of a key, hex: what the store keeps.
pub fn key_hash(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// The webhook signing secret of a key.
pub fn webhook_secret(key: &str) -> String {
    hex::encode(Sha256::digest(format!("runbox-webhook:{key}").as_bytes()))
}

/// A new random key.
pub fn generate_key() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("rbx_{}", hex::encode(bytes))
}

/// A new key's public id.
pub fn generate_key_id() -> String {
    let mut bytes = [0u8; 6];
    rand::rng().fill_bytes(&mut bytes);
    format!("key_{}", hex::encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn bearer_and_x_api_key_are_both_accepted() {
        let mut headers = HeaderMap::new();
        headers.insert("authorization", HeaderValue::from_static("Bearer rbx_1"));
        assert_eq!(presented_key(&headers).unwrap().as_deref(), Some("rbx_1"));
        let mut headers = HeaderMap::new();
        headers.insert("x-api-key", HeaderValue::from_static("rbx_2"));
        assert_eq!(presented_key(&headers).unwrap().as_deref(), Some("rbx_2"));
    }

    #[test]
    fn basic_authorization_is_refused() {
        let mut headers = HeaderMap::new();
        headers.insert("authorization", HeaderValue::from_static("Basic abc"));
        assert_eq!(presented_key(&headers).unwrap_err().status.as_u16(), 401);
    }

    #[test]
    fn keys_are_random_and_hashed() {
        let (a, b) = (generate_key(), generate_key());
        assert_ne!(a, b);
        assert_eq!(key_hash(&a).len(), 64);
        assert_ne!(key_hash(&a), webhook_secret(&a));
    }
}
