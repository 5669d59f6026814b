//! What every request passes before a handler sees it: the bearer token on mutating calls, the
//! protections of no-token mode against hostile web pages, and JSON bodies on every error.
//!
//! Without a token the server trusts whoever can reach loopback. A web page open in the user's
//! browser can reach loopback too, so in that mode a request is refused when:
//! - its `Host` is not the address the server listens on or `localhost` (DNS rebinding: a
//!   hostile name that resolves to 127.0.0.1 carries its own name in `Host`);
//! - it carries an `Origin` other than the server's own (a cross-site `fetch` or form);
//! - it is a POST whose `Content-Type` is not `application/json` (the only kind of POST a page
//!   can send cross-site without a CORS preflight, which this server never grants).

use super::{Api, ApiError};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Mutating calls need `Authorization: Bearer TOKEN` when a token is configured; without one,
/// requests must come from the server's own origin (see the module docs).
pub(super) async fn authorize(
    State(api): State<Api>,
    headers: HeaderMap,
    req: Request,
    next: Next,
) -> Response {
    let mutating = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    let public = matches!(req.uri().path(), "/healthz" | "/" | "/ui.js" | "/ui.css");
    let needs_token = mutating || (api.token_for_reads && !public);
    match &api.token {
        Some(token) if needs_token => {
            let given = headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split_once(' '))
                .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
                .map(|(_, t)| t.trim());
            if !given.is_some_and(|g| same_secret(g.as_bytes(), token.as_bytes())) {
                let mut resp =
                    ApiError::new(StatusCode::UNAUTHORIZED, "missing or wrong bearer token")
                        .into_response();
                resp.headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
                return resp;
            }
        }
        Some(_) => {}
        None => {
            if let Err(e) = local_only(&api, &headers, req.method()) {
                return e.into_response();
            }
        }
    }
    next.run(req).await
}

/// The checks of no-token mode.
fn local_only(api: &Api, headers: &HeaderMap, method: &Method) -> Result<(), ApiError> {
    let port = api.listen.port();
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !host_is_ours(host, api.listen) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!(
                "Host `{host}` is not this server; without --token only http://localhost:{port} and http://{} are served",
                api.listen
            ),
        ));
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("");
        let ours = origin
            .strip_prefix("http://")
            .is_some_and(|o| host_is_ours(o, api.listen));
        if !ours {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                format!("requests from origin `{origin}` are refused; without --token only pages served by this server may call it"),
            ));
        }
    }
    if *method == Method::POST && !is_json(headers) {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "POST requests must have `Content-Type: application/json`",
        ));
    }
    Ok(())
}

/// Whether `host` (a `Host` header or the host part of an origin) names the listen address,
/// or `localhost`, with the listen port.
fn host_is_ours(host: &str, listen: std::net::SocketAddr) -> bool {
    let port = listen.port().to_string();
    let Some((name, p)) = host.rsplit_once(':') else {
        return false;
    };
    if p != port {
        return false;
    }
    let name = name.trim_start_matches('[').trim_end_matches(']');
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip == listen.ip() || (listen.ip().is_unspecified() && ip.is_loopback()))
}

/// Whether the request declares a JSON body.
pub(super) fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
}

/// Gives every error response a JSON body `{"error": ...}`: axum's own rejections (405, 413,
/// ...) come as plain text or empty.
pub(super) async fn json_errors(req: Request, next: Next) -> Response {
    let resp = next.run(req).await;
    let status = resp.status();
    let json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !(status.is_client_error() || status.is_server_error()) || json {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let text = axum::body::to_bytes(body, 16 << 10)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default();
    let message = match (status, text.is_empty()) {
        (StatusCode::METHOD_NOT_ALLOWED, _) => {
            "method not allowed on this endpoint (see /api/openapi.json)".to_string()
        }
        (StatusCode::PAYLOAD_TOO_LARGE, _) => format!(
            "the request body is larger than {} KiB",
            super::MAX_BODY >> 10
        ),
        (_, false) => text,
        (_, true) => status.canonical_reason().unwrap_or("error").to_lowercase(),
    };
    let mut out = ApiError::new(status, message).into_response();
    for (name, value) in parts.headers.iter() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            out.headers_mut().insert(name.clone(), value.clone());
        }
    }
    out
}

/// Compares a given token with the secret in constant time, and without leaking the secret's
/// length: both are hashed first, and the two digests compared byte by byte without stopping.
fn same_secret(given: &[u8], secret: &[u8]) -> bool {
    use sha2::{Digest, Sha256};
    let (a, b) = (Sha256::digest(given), Sha256::digest(secret));
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

#[cfg(test)]
mod tests {
    use super::{host_is_ours, same_secret};

    #[test]
    fn tokens_compare_by_digest() {
        assert!(same_secret(b"s3cret", b"s3cret"));
        assert!(!same_secret(b"s3cre", b"s3cret"));
        assert!(!same_secret(b"", b"s3cret"));
        assert!(!same_secret(b"s3cret-and-more", b"s3cret"));
    }

    #[test]
    fn only_the_listen_address_and_localhost_are_our_hosts() {
        let listen = "127.0.0.1:8080".parse().unwrap();
        assert!(host_is_ours("127.0.0.1:8080", listen));
        assert!(host_is_ours("localhost:8080", listen));
        assert!(host_is_ours("LOCALHOST:8080", listen));
        assert!(!host_is_ours("evil.example:8080", listen));
        assert!(!host_is_ours("127.0.0.1:9090", listen));
        assert!(!host_is_ours("127.0.0.1", listen));
        assert!(!host_is_ours("localhost.evil.example:8080", listen));
        let v6 = "[::1]:7000".parse().unwrap();
        assert!(host_is_ours("[::1]:7000", v6));
        assert!(!host_is_ours("127.0.0.1:7000", v6));
    }
}
