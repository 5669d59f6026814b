//! Outgoing HTTP for components (`wasi:http/outgoing-handler`), denied unless the task grants it.
//!
//! wasmtime-wasi-http turns a guest's request into an `http::Request` and hands it to
//! [`HttpHooks::send_request`]; this module is the only code that sends it. Every request is
//! checked before anything leaves the host: the origin (scheme, host, port) must be on the
//! task's allowlist, the attempt must be under `max_requests`, and every address a DNS name
//! resolves to must be public or itself named by the allowlist (so a name that resolves to
//! 127.0.0.1 or 10.0.0.5 cannot reach them: DNS rebinding). The host connects to the address it
//! checked, never re-resolving. A redirect is a new request from the guest, checked the same way.
//! The response body is cut at `max_response`, and the whole request at `timeout`.
//! Each request, and each refusal with the rule that refused it, is a record of the attempt's log.

use crate::pipes::CappedPipe;
use bulkhead_core::contract::HttpGrant;
use bytes::Bytes;
use http::uri::Scheme;
use http_body::{Body, Frame};
use http_body_util::BodyExt;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

/// What one attempt may do over HTTP, and what it did.
pub(super) struct HttpHooks {
    grant: Option<HttpGrant>,
    log: CappedPipe,
    /// Requests let through so far.
    sent: u32,
}

impl HttpHooks {
    pub(super) fn new(grant: Option<HttpGrant>, log: CappedPipe) -> Self {
        HttpHooks {
            grant,
            log,
            sent: 0,
        }
    }

    /// Refuses the request: a `warn` record naming the rule, and `HttpRequestDenied` for the
    /// guest.
    fn deny(&self, method: &str, url: &str, rule: String) -> SendFuture {
        write_record(
            &self.log,
            serde_json::json!({
                "level": "warn", "msg": "http request denied", "method": method, "url": url,
                "rule": rule,
            }),
        );
        Box::new(async { Err(Error::HttpRequestDenied) })
    }
}

type SendFuture = Box<
    dyn Future<
            Output = Result<
                (
                    http::Response<WasiBody>,
                    Box<dyn Future<Output = Result<(), Error>> + Send>,
                ),
                Error,
            >,
        > + Send,
>;

impl WasiHttpHooks for HttpHooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        _options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> SendFuture {
        let method = request.method().to_string();
        let url = loggable_url(request.uri());
        let Some(grant) = &self.grant else {
            return self.deny(
                &method,
                &url,
                "the task has no `http:` grant (outgoing HTTP is denied unless granted)".into(),
            );
        };
        let https = request.uri().scheme() == Some(&Scheme::HTTPS);
        let Some(host) = request.uri().host() else {
            return self.deny(&method, &url, "the request names no host".into());
        };
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let port = request
            .uri()
            .port_u16()
            .unwrap_or(if https { 443 } else { 80 });
        if grant.admits(https, &host, port).is_none() {
            let scheme = if https { "https" } else { "http" };
            return self.deny(
                &method,
                &url,
                format!(
                    "{scheme}://{}:{port} is not in http.allow ({})",
                    bracket(&host),
                    grant
                        .allow
                        .iter()
                        .map(|o| o.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
        }
        if self.sent >= grant.max_requests {
            return self.deny(
                &method,
                &url,
                format!(
                    "http.max_requests = {} requests were already made",
                    grant.max_requests
                ),
            );
        }
        self.sent += 1;
        let named: Vec<IpAddr> = grant.allow.iter().filter_map(|o| o.ip()).collect();
        let record = Record {
            log: self.log.clone(),
            method,
            url,
            status: None,
            started: Instant::now(),
            done: false,
        };
        let (max, timeout) = (grant.max_response, grant.timeout);
        Box::new(async move {
            let deadline = tokio::time::Instant::now() + timeout;
            let mut record = record;
            let sent = tokio::time::timeout_at(
                deadline,
                send(request, https, host, port, named, &mut record),
            )
            .await
            .unwrap_or_else(|_| Err((Error::ConnectionTimeout, "timed out (http.timeout)".into())));
            let (response, conn) = match sent {
                Ok(r) => r,
                Err((e, why)) => {
                    record.finish(0, Some(&why));
                    return Err(e);
                }
            };
            let response = response.map(|incoming| {
                Limited {
                    inner: incoming,
                    read: 0,
                    max,
                    deadline: Box::pin(tokio::time::sleep_until(deadline)),
                    record,
                    conn,
                }
                .boxed_unsync()
            });
            Ok((
                response,
                Box::new(async { Ok(()) }) as Box<dyn Future<Output = _> + Send>,
            ))
        })
    }
}

/// `scheme://authority/path`, with any query left out: queries often carry keys.
fn loggable_url(uri: &http::Uri) -> String {
    let scheme = uri.scheme_str().unwrap_or("https");
    let authority = uri.authority().map_or("", |a| a.as_str());
    let query = if uri.query().is_some() {
        "?<query omitted>"
    } else {
        ""
    };
    format!("{scheme}://{authority}{}{query}", uri.path())
}

fn bracket(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

/// Whether `ip` is an address on the public internet, which a DNS name in the allowlist may
/// resolve to. Loopback, private, shared, link-local, unspecified, broadcast, multicast and
/// documentation ranges are not, nor IPv6 unique-local, link-local and mapped private IPv4.
fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || o[0] == 0
                || (o[0] == 100 && (64..128).contains(&o[1]))
                || (o[0] == 192 && o[1] == 0 && o[2] == 0)
                || o[0] >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let s = v6.segments();
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
                || (s[0] == 0x2001 && s[1] == 0x0db8))
        }
    }
}

/// The addresses the host may connect to for `host:port`: the literal itself when the allowlist
/// names an address, else what the name resolves to, each public or named by the allowlist.
async fn addresses(
    host: &str,
    port: u16,
    named: &[IpAddr],
) -> Result<Vec<SocketAddr>, (Error, String)> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let resolved: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| {
            (
                Error::DnsError {
                    rcode: None,
                    info_code: None,
                },
                format!("cannot resolve {host}: {e}"),
            )
        })?
        .collect();
    let (ok, refused): (Vec<SocketAddr>, Vec<SocketAddr>) = resolved
        .into_iter()
        .partition(|a| is_public(a.ip()) || named.contains(&a.ip()));
    if ok.is_empty() {
        let list = refused
            .iter()
            .map(|a| a.ip().to_string())
            .collect::<Vec<_>>()
            .join(", ");
        return Err((
            Error::DestinationIpProhibited,
            format!(
                "{host} resolves to {list}, not a public address and not named by http.allow \
                 (name the address itself in http.allow to reach it)"
            ),
        ));
    }
    Ok(ok)
}

trait Stream: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Stream for T {}

/// Connects to a checked address, speaks TLS for `https`, sends the request and waits for the
/// response's head. The connection is driven by a task that ends with the body (or is aborted).
async fn send(
    mut request: http::Request<WasiBody>,
    https: bool,
    host: String,
    port: u16,
    named: Vec<IpAddr>,
    record: &mut Record,
) -> Result<(http::Response<hyper::body::Incoming>, AbortOnDrop), (Error, String)> {
    let addrs = addresses(&host, port, &named).await?;
    let mut last = None;
    let mut tcp = None;
    for a in &addrs {
        match TcpStream::connect(a).await {
            Ok(s) => {
                tcp = Some(s);
                break;
            }
            Err(e) => last = Some(format!("cannot connect to {a}: {e}")),
        }
    }
    let Some(tcp) = tcp else {
        return Err((
            Error::ConnectionRefused,
            last.unwrap_or_else(|| "no address".into()),
        ));
    };
    let stream: Box<dyn Stream> = if https {
        let roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.into(),
        };
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| (Error::TlsProtocolError, e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
        let name = match host.parse::<IpAddr>() {
            Ok(ip) => rustls::pki_types::ServerName::from(ip),
            Err(_) => rustls::pki_types::ServerName::try_from(host.clone())
                .map_err(|e| (Error::TlsProtocolError, format!("{host}: {e}")))?,
        };
        let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await
            .map_err(|e| (Error::TlsCertificateError, format!("TLS with {host}: {e}")))?;
        Box::new(tls)
    } else {
        Box::new(tcp)
    };
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| (Error::from(e), "HTTP handshake failed".to_string()))?;
    let conn = AbortOnDrop(tokio::spawn(async move {
        let _ = conn.await;
    }));
    // The head names the origin (Host was set from it); the request line is the path only.
    let path = request
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_string();
    *request.uri_mut() = http::Uri::builder()
        .path_and_query(path)
        .build()
        .map_err(|e| (Error::HttpRequestUriInvalid, e.to_string()))?;
    let response = sender.send_request(request).await.map_err(|e| {
        let why = format!("no response: {e}");
        (Error::from(e), why)
    })?;
    record.status = Some(response.status().as_u16());
    Ok((response, conn))
}

/// Aborts the connection's task when the response is done with.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The log record of one request, written once: when its body ends, fails or is dropped.
struct Record {
    log: CappedPipe,
    method: String,
    url: String,
    status: Option<u16>,
    started: Instant,
    done: bool,
}

impl Record {
    fn finish(&mut self, bytes: u64, error: Option<&str>) {
        if std::mem::replace(&mut self.done, true) {
            return;
        }
        let mut v = serde_json::json!({
            "level": if error.is_some() { "warn" } else { "info" },
            "msg": "http request",
            "method": self.method,
            "url": self.url,
            "status": self.status,
            "bytes": bytes,
            "duration_ms": self.started.elapsed().as_millis() as u64,
        });
        if let Some(e) = error {
            v["error"] = e.into();
        }
        write_record(&self.log, v);
    }
}

fn write_record(log: &CappedPipe, v: serde_json::Value) {
    let mut line = v.to_string().into_bytes();
    line.push(b'\n');
    log.append(&line);
}

/// A response body cut at `max` bytes and at the request's deadline.
struct Limited {
    inner: hyper::body::Incoming,
    read: u64,
    max: u64,
    deadline: Pin<Box<tokio::time::Sleep>>,
    record: Record,
    conn: AbortOnDrop,
}

impl Body for Limited {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        let this = self.get_mut();
        if this.record.done {
            return Poll::Ready(None);
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.read += data.len() as u64;
                    if this.read > this.max {
                        let why = format!(
                            "the response is longer than http.max_response = {} bytes",
                            this.max
                        );
                        this.record.finish(this.read, Some(&why));
                        this.conn.0.abort();
                        return Poll::Ready(Some(Err(Error::HttpResponseBodySize(Some(this.max)))));
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => {
                this.record.finish(this.read, Some(&e.to_string()));
                Poll::Ready(Some(Err(Error::from(e))))
            }
            Poll::Ready(None) => {
                this.record.finish(this.read, None);
                Poll::Ready(None)
            }
            Poll::Pending => match this.deadline.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    this.record
                        .finish(this.read, Some("timed out (http.timeout)"));
                    this.conn.0.abort();
                    Poll::Ready(Some(Err(Error::HttpResponseTimeout)))
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.record.done || self.inner.is_end_stream()
    }
}

impl Drop for Limited {
    fn drop(&mut self) {
        self.record.finish(self.read, None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_addresses_are_public() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:10.0.0.1",
            "::ffff:127.0.0.1",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "93.184.216.34",
            "1.1.1.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn the_logged_url_leaves_the_query_out() {
        let uri: http::Uri = "http://127.0.0.1:8900/items?key=secret".parse().unwrap();
        let url = loggable_url(&uri);
        assert_eq!(url, "http://127.0.0.1:8900/items?<query omitted>");
        assert!(!url.contains("secret"));
    }

    #[tokio::test]
    async fn a_name_that_resolves_to_a_private_address_is_refused_unless_the_address_is_named() {
        let (e, why) = addresses("localhost", 80, &[]).await.unwrap_err();
        assert!(matches!(e, Error::DestinationIpProhibited), "{e:?}");
        assert!(why.contains("not a public address"), "{why}");
        let named: Vec<IpAddr> = vec!["127.0.0.1".parse().unwrap(), "::1".parse().unwrap()];
        let ok = addresses("localhost", 80, &named).await.unwrap();
        assert!(ok.iter().all(|a| a.ip().is_loopback()), "{ok:?}");
    }
}
