//! The playground page at `GET /`: an editor, a terminal on the session API and
//! a judge, built from `web/` by `scripts/build-web.sh` into `assets/playground/`
//! and compiled into the binary, so it needs no network and no files at run time.

use axum::Router;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::state::SharedState;

/// The page.
const INDEX: &str = include_str!("../assets/playground/index.html");
/// Its script: CodeMirror, xterm.js and the page's own code, bundled.
const SCRIPT: &[u8] = include_bytes!("../assets/playground/app.js");
/// Its style sheet (xterm.js' included).
const STYLE: &[u8] = include_bytes!("../assets/playground/app.css");

/// What the page may load and connect to: this server only. CodeMirror and
/// xterm.js set inline styles, hence `'unsafe-inline'` for styles (not scripts).
const POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// The playground's routes.
pub fn routes() -> Router<SharedState> {
    Router::new()
        .route("/", get(index))
        .route("/playground/app.js", get(script))
        .route("/playground/app.css", get(style))
}

async fn index() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
            (header::CONTENT_SECURITY_POLICY, POLICY),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        INDEX,
    )
        .into_response()
}

/// An asset: cached for a while, revalidated after (the binary may change).
fn asset(content_type: &'static str, body: &'static [u8]) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=300"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}

async fn script() -> Response {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

async fn style() -> Response {
    asset("text/css; charset=utf-8", STYLE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_loads_only_its_own_assets() {
        assert!(INDEX.contains("/playground/app.js"));
        assert!(!INDEX.contains("http://") && !INDEX.contains("https://"));
    }

    #[test]
    fn the_assets_stay_within_their_budget() {
        let total = INDEX.len() + SCRIPT.len() + STYLE.len();
        assert!(total <= 1_500_000, "{total} bytes");
    }
}
