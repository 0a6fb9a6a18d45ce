//! Webhooks: a finished submission's result POSTed to its `callback_url`, signed,
//! retried with backoff, and sent once even with several API nodes.
//!
//! The body is the result JSON. `X-Runbox-Signature: sha256=<hex>` is the
//! HMAC-SHA256 of the body with the key's webhook secret (see `auth.rs`);
//! `X-Runbox-Submission` names the submission. Callbacks to loopback, private and
//! link-local addresses are refused unless the operator allows them, and the
//! address checked is the one connected to (no DNS rebinding in between).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use runbox_store::{Store, WebhookDelivery, now_ms};
use sha2::Sha256;

use crate::config::WebhookSettings;
use crate::error::ApiError;

/// The signature header.
pub const SIGNATURE_HEADER: &str = "x-runbox-signature";

/// What a webhook sends: the native API POSTs the result; Judge0's callbacks
/// PUT the submission in Judge0's terms.
#[derive(Debug, Clone)]
pub struct Payload {
    /// The HTTP method.
    pub method: reqwest::Method,
    /// The body.
    pub json: serde_json::Value,
}

impl Payload {
    /// A POST of `json`.
    pub fn post(json: serde_json::Value) -> Payload {
        Payload {
            method: reqwest::Method::POST,
            json,
        }
    }
}

/// Sends webhooks.
pub struct Webhooks {
    store: Arc<dyn Store>,
    settings: WebhookSettings,
}

/// `sha256=<hex>` of `body` with `secret`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Refuses a callback URL that is not http(s), or (unless allowed) names a
/// loopback or private address literally.
pub fn check_url(url: &str, allow_private: bool) -> Result<reqwest::Url, ApiError> {
    let parsed = reqwest::Url::parse(url).map_err(|e| {
        ApiError::invalid("callback_url", format!("callback_url is not a URL: {e}"))
    })?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(ApiError::invalid(
            "callback_url",
            "callback_url must be an http or https URL",
        ));
    }
    let Some(host) = parsed.host_str() else {
        return Err(ApiError::invalid(
            "callback_url",
            "callback_url has no host",
        ));
    };
    if !allow_private {
        let literal = host.trim_start_matches('[').trim_end_matches(']');
        let private = match literal.parse::<IpAddr>() {
            Ok(ip) => is_private(ip),
            Err(_) => host.eq_ignore_ascii_case("localhost") || host.ends_with(".localhost"),
        };
        if private {
            return Err(ApiError::invalid(
                "callback_url",
                "callback_url points at a loopback or private address, which this server does not call",
            ));
        }
    }
    Ok(parsed)
}

/// Loopback, private, link-local, unspecified, CGNAT or unique-local addresses.
fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || (v4.octets()[0] == 100 && (64..128).contains(&v4.octets()[1]))
        }
        IpAddr::V6(v6) => {
            v6.is_loopback()
                || v6.is_unspecified()
                || (v6.segments()[0] & 0xfe00) == 0xfc00
                || (v6.segments()[0] & 0xffc0) == 0xfe80
                || v6
                    .to_ipv4_mapped()
                    .is_some_and(|v4| is_private(IpAddr::V4(v4)))
        }
    }
}

/// The address to connect to for `host`: the first that is not private (unless
/// allowed). The request is then pinned to it, so a second DNS answer cannot point
/// the connection elsewhere.
async fn resolve(host: &str, port: u16, allow_private: bool) -> Result<SocketAddr, String> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .collect();
    addrs
        .into_iter()
        .find(|a| allow_private || !is_private(a.ip()))
        .ok_or_else(|| format!("{host} resolves only to private addresses"))
}

impl Webhooks {
    /// Webhooks recorded in `store`.
    pub fn new(store: Arc<dyn Store>, settings: WebhookSettings) -> Webhooks {
        Webhooks { store, settings }
    }

    /// Sends the result of `id` to `url` unless another node already took it.
    pub async fn send_once(&self, id: &str, url: &str, key_id: Option<&str>, body: &Payload) {
        match self.store.take_webhook(id).await {
            Ok(true) => {}
            Ok(false) => return,
            Err(error) => {
                tracing::warn!(id, %error, "cannot take a webhook");
                return;
            }
        }
        let secret = match key_id {
            Some(key_id) => match self.store.key_by_id(key_id).await {
                Ok(key) => key.map(|k| k.webhook_secret),
                Err(error) => {
                    tracing::warn!(id, %error, "cannot read the key of a webhook");
                    None
                }
            },
            None => None,
        };
        let payload = serde_json::to_vec(&body.json).unwrap_or_default();
        let delivery = self
            .deliver(id, url, body.method.clone(), secret.as_deref(), &payload)
            .await;
        if delivery.delivered {
            metrics::counter!("runbox_webhooks_total", "outcome" => "delivered").increment(1);
        } else {
            metrics::counter!("runbox_webhooks_total", "outcome" => "failed").increment(1);
            tracing::warn!(id, url, error = ?delivery.error, "webhook not delivered");
        }
        if let Err(error) = self.store.record_webhook(id, &delivery).await {
            tracing::warn!(id, %error, "cannot record a webhook delivery");
        }
    }

    /// POSTs `payload` with retries; the outcome of the last try.
    async fn deliver(
        &self,
        id: &str,
        url: &str,
        method: reqwest::Method,
        secret: Option<&str>,
        payload: &[u8],
    ) -> WebhookDelivery {
        let mut delivery = WebhookDelivery {
            url: url.to_string(),
            attempts: 0,
            status_code: None,
            delivered: false,
            error: None,
            at_ms: now_ms(),
        };
        let mut backoff = Duration::from_millis(self.settings.backoff_ms);
        for attempt in 1..=self.settings.attempts.max(1) {
            delivery.attempts = attempt;
            match self
                .try_once(id, url, method.clone(), secret, payload)
                .await
            {
                Ok(status) if (200..300).contains(&status) => {
                    delivery.status_code = Some(status);
                    delivery.delivered = true;
                    delivery.error = None;
                    break;
                }
                Ok(status) => {
                    delivery.status_code = Some(status);
                    delivery.error = Some(format!("the receiver answered {status}"));
                    // A client error will not heal by itself, except 408 and 429.
                    if (400..500).contains(&status) && status != 408 && status != 429 {
                        break;
                    }
                }
                Err(error) => delivery.error = Some(error),
            }
            if attempt < self.settings.attempts {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(60));
            }
        }
        delivery.at_ms = now_ms();
        delivery
    }

    async fn try_once(
        &self,
        id: &str,
        url: &str,
        method: reqwest::Method,
        secret: Option<&str>,
        payload: &[u8],
    ) -> Result<u16, String> {
        let parsed =
            check_url(url, self.settings.allow_private_addresses).map_err(|e| e.message)?;
        let host = parsed.host_str().unwrap_or_default().to_string();
        let port = parsed.port_or_known_default().unwrap_or(80);
        let lookup_host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let addr = resolve(&lookup_host, port, self.settings.allow_private_addresses).await?;
        let client = reqwest::Client::builder()
            .timeout(Duration::from_millis(self.settings.timeout_ms))
            .redirect(reqwest::redirect::Policy::none())
            .resolve(&lookup_host, addr)
            .build()
            .map_err(|e| e.to_string())?;
        let mut request = client
            .request(method, parsed)
            .header("content-type", "application/json")
            .header("x-runbox-submission", id)
            .body(payload.to_vec());
        if let Some(secret) = secret {
            request = request.header(SIGNATURE_HEADER, signature(secret, payload));
        }
        let response = request.send().await.map_err(|e| e.to_string())?;
        Ok(response.status().as_u16())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hmac_sha256_hex() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[tokio::test]
    async fn a_name_that_resolves_to_loopback_is_refused_unless_allowed() {
        // Resolution is checked on its own, beside the URL check: the address a
        // name resolves to decides, not the name.
        let err = resolve("localhost", 80, false).await.unwrap_err();
        assert_eq!(err, "localhost resolves only to private addresses");
        assert!(
            resolve("localhost", 80, true)
                .await
                .unwrap()
                .ip()
                .is_loopback()
        );
    }

    #[test]
    fn private_and_loopback_callbacks_are_refused_unless_allowed() {
        for url in [
            "http://127.0.0.1/x",
            "http://10.1.2.3/",
            "http://[::1]:80/",
            "http://localhost:9/",
            "http://169.254.169.254/latest",
        ] {
            assert!(check_url(url, false).is_err(), "{url}");
            assert!(check_url(url, true).is_ok(), "{url}");
        }
        assert!(check_url("https://example.org/hook", false).is_ok());
        assert!(check_url("ftp://example.org/", true).is_err());
    }
}
