//! The web UI's static assets, embedded in the binary, each served with a strict content
//! security policy.

use axum::http::header;
use axum::response::IntoResponse;

/// The content security policy of the UI: no inline script or style, nothing from elsewhere,
/// never framed (clickjacking).
const UI_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The web UI: one page over this API (workflows, plugins, runs, a run's tasks and logs,
/// trigger, cancel, retry). Everything the server sends is rendered as text, never as HTML.
pub(super) async fn ui() -> impl IntoResponse {
    asset("text/html; charset=utf-8", include_str!("ui.html"))
}

pub(super) async fn ui_js() -> impl IntoResponse {
    asset("text/javascript; charset=utf-8", include_str!("ui.js"))
}

pub(super) async fn ui_css() -> impl IntoResponse {
    asset("text/css; charset=utf-8", include_str!("ui.css"))
}

fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CONTENT_SECURITY_POLICY, UI_CSP),
            (header::X_FRAME_OPTIONS, "DENY"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
}
