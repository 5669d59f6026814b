//! An example component plugin (ABI v2) that uses outgoing HTTP (`wasi:http`), which the host
//! denies unless the task grants it (`http:` in the workflow).
//!
//! `params.urls` is a list of URLs, fetched in order with GET. Redirects (301, 302, 303, 307,
//! 308) are followed up to `params.max_redirects` (default 5): each hop is a new request, which
//! the host checks against the grant again. The output lists, per URL, the final `status`, the
//! body's `bytes` and its first 200 characters (`text`), or the `error` that stopped it.
//! With `params.fail_on_error: true` the first error fails the task (transiently).

wit_bindgen::generate!({
    world: "plugin",
    path: "../../../wit",
});

use bulkhead::plugin::log::log;
use bulkhead::plugin::types::{ErrorKind, Level};
use serde_json::{json, Value};
use wasip2::http::outgoing_handler;
use wasip2::http::types::{Fields, IncomingResponse, OutgoingRequest, Scheme};
use wasip2::io::streams::StreamError;

struct Fetch;

impl Guest for Fetch {
    fn run(task: Task) -> Result<String, TaskError> {
        let params: Value = serde_json::from_str(&task.params).map_err(|e| TaskError {
            kind: ErrorKind::Permanent,
            message: format!("params are not JSON: {e}"),
        })?;
        let urls: Vec<String> = params
            .get("urls")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|u| u.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        let max_redirects = params
            .get("max_redirects")
            .and_then(Value::as_u64)
            .unwrap_or(5);
        let fail_on_error = params.get("fail_on_error").and_then(Value::as_bool) == Some(true);
        let mut results = Vec::with_capacity(urls.len());
        for url in &urls {
            match get_following(url, max_redirects) {
                Ok((status, body)) => {
                    let text: String = String::from_utf8_lossy(&body).chars().take(200).collect();
                    results.push(
                        json!({"url": url, "status": status, "bytes": body.len(), "text": text}),
                    );
                }
                Err(error) => {
                    log(
                        Level::Warn,
                        "request failed",
                        &[("url".into(), url.clone()), ("error".into(), error.clone())],
                    );
                    if fail_on_error {
                        return Err(TaskError {
                            kind: ErrorKind::Transient,
                            message: format!("{url}: {error}"),
                        });
                    }
                    results.push(json!({"url": url, "error": error}));
                }
            }
        }
        Ok(json!({"results": results}).to_string())
    }
}

/// GET `url`, following up to `hops` redirects.
fn get_following(url: &str, hops: u64) -> Result<(u16, Vec<u8>), String> {
    let mut url = url.to_string();
    for _ in 0..=hops {
        let (status, location, body) = get(&url)?;
        match (status, location) {
            (301 | 302 | 303 | 307 | 308, Some(next)) => {
                log(
                    Level::Info,
                    "redirected",
                    &[("from".into(), url.clone()), ("to".into(), next.clone())],
                );
                url = next;
            }
            _ => return Ok((status, body)),
        }
    }
    Err(format!("more than {hops} redirects"))
}

/// One GET: status, `Location` header, body.
fn get(url: &str) -> Result<(u16, Option<String>, Vec<u8>), String> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| format!("`{url}` is not an absolute URL"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let request = OutgoingRequest::new(Fields::new());
    let scheme = match scheme {
        "http" => Scheme::Http,
        "https" => Scheme::Https,
        other => Scheme::Other(other.to_string()),
    };
    request
        .set_scheme(Some(&scheme))
        .map_err(|()| "bad scheme".to_string())?;
    request
        .set_authority(Some(authority))
        .map_err(|()| "bad authority".to_string())?;
    request
        .set_path_with_query(Some(path))
        .map_err(|()| "bad path".to_string())?;
    let pending = outgoing_handler::handle(request, None).map_err(|e| format!("{e:?}"))?;
    pending.subscribe().block();
    let response: IncomingResponse = match pending.get() {
        Some(Ok(Ok(r))) => r,
        Some(Ok(Err(e))) => return Err(format!("{e:?}")),
        Some(Err(())) | None => return Err("the response was already taken".into()),
    };
    let status = response.status();
    let location = response
        .headers()
        .get("location")
        .first()
        .map(|v| String::from_utf8_lossy(v).into_owned());
    let body = response.consume().map_err(|()| "no body".to_string())?;
    let stream = body.stream().map_err(|()| "no body stream".to_string())?;
    let mut bytes = Vec::new();
    loop {
        match stream.blocking_read(64 << 10) {
            Ok(chunk) => bytes.extend_from_slice(&chunk),
            Err(StreamError::Closed) => break,
            Err(StreamError::LastOperationFailed(e)) => {
                let code = wasip2::http::types::http_error_code(&e);
                return Err(match code {
                    Some(c) => format!("{c:?}"),
                    None => e.to_debug_string(),
                });
            }
        }
    }
    drop(stream);
    Ok((status, location, bytes))
}

export!(Fetch);
