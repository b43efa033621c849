//! The metrics endpoint (`--listen`): an HTTP/1.1 server (hyper) on tracer's runtime that
//! answers `GET /metrics` with the run's metrics and `GET /healthz` with `ok`. The metrics
//! are OpenMetrics text, or the Prometheus protobuf format (`promproto.rs`, with native
//! histograms) when the scrape's Accept header prefers it. The address is bound when tracer
//! starts, so that one in use or not allowed is a one-line error before anything is loaded.
use std::{
    convert::Infallible,
    net::{SocketAddr, TcpListener},
    sync::{Arc, Mutex},
    time::Duration,
};

use anyhow::{Result, anyhow};
use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Request, Response, StatusCode, body::Incoming, header, service::service_fn};
use hyper_util::rt::{TokioIo, TokioTimer};

use prometheus_client::registry::Registry;

use super::{metrics::Metrics, openmetrics, promproto};

/// The OpenMetrics text format's media type.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A client that sends no complete request head within this is let go.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// Parses `--listen`: `ADDR:PORT`, or `PORT` / `:PORT` for 127.0.0.1.
pub fn parse_addr(s: &str) -> Result<SocketAddr, String> {
    let port_only = s.strip_prefix(':').unwrap_or(s);
    if let Ok(port) = port_only.parse::<u16>() {
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    s.parse::<SocketAddr>().map_err(|_| {
        format!("'{s}' is not ADDR:PORT (for example 127.0.0.1:9464, 0.0.0.0:9464 or [::1]:9464)")
    })
}

/// Binds the address now.
pub fn bind(addr: SocketAddr) -> Result<TcpListener> {
    let l =
        TcpListener::bind(addr).map_err(|e| anyhow!("cannot listen on {addr}: {}", plain(&e)))?;
    l.set_nonblocking(true)
        .map_err(|e| anyhow!("cannot listen on {addr}: {}", plain(&e)))?;
    Ok(l)
}

/// An I/O error as a short phrase ("address already in use"), without its code.
fn plain(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_lowercase(),
        None => s,
    }
}

/// Serves on the runtime until tracer ends. Errors of one connection end that connection.
pub fn spawn(listener: TcpListener, metrics: Arc<Mutex<Metrics>>) -> Result<()> {
    let exporters = Arc::new(Exporters {
        registry: openmetrics::registry(metrics.clone()),
        metrics,
    });
    let addr = listener.local_addr().ok();
    let listener = tokio::net::TcpListener::from_std(listener)
        .map_err(|e| anyhow!("cannot serve metrics: {}", plain(&e)))?;
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                // Out of descriptors, for example: wait, and go on.
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            };
            let exporters = exporters.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req| answer(req, exporters.clone()));
                let _ = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(HEADER_TIMEOUT)
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    if let Some(a) = addr {
        crate::say::line(format!("tracer: metrics on http://{a}/metrics"));
    }
    Ok(())
}

/// Whether a scrape's Accept header prefers the protobuf format: it lists
/// `application/vnd.google.protobuf` with `proto=io.prometheus.client.MetricFamily` and
/// `encoding=delimited` at a quality (`q`, 1 if not given) above 0 and no lower than that
/// of any text type it lists (`application/openmetrics-text`, `text/plain`, a wildcard).
pub fn prefers_protobuf(accept: &str) -> bool {
    let (mut protobuf, mut text) = (None::<f32>, 0f32);
    for range in accept.split(',') {
        let mut parts = range.split(';').map(str::trim);
        let kind = parts.next().unwrap_or_default().to_ascii_lowercase();
        let (mut q, mut proto, mut encoding) = (1f32, "", "");
        for p in parts {
            let Some((k, v)) = p.split_once('=') else {
                continue;
            };
            let v = v.trim().trim_matches('"');
            match k.trim().to_ascii_lowercase().as_str() {
                "q" => q = v.parse().unwrap_or(0.0),
                "proto" => proto = v,
                "encoding" => encoding = v,
                _ => {}
            }
        }
        match kind.as_str() {
            "application/vnd.google.protobuf"
                if proto == "io.prometheus.client.MetricFamily" && encoding == "delimited" =>
            {
                protobuf = Some(protobuf.map_or(q, |p| p.max(q)));
            }
            "application/openmetrics-text" | "text/plain" | "text/*" | "*/*" => {
                text = text.max(q);
            }
            _ => {}
        }
    }
    protobuf.is_some_and(|p| p > 0.0 && p >= text)
}

/// The run's metrics, and prometheus-client's registry that writes their text.
struct Exporters {
    metrics: Arc<Mutex<Metrics>>,
    registry: Registry,
}

/// The exposition a scrape asks for: its media type and body.
fn exposition(req: &Request<Incoming>, e: &Exporters) -> (&'static str, Bytes) {
    let accept = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if prefers_protobuf(accept) {
        // A poisoned lock answers an empty exposition.
        let body = e
            .metrics
            .lock()
            .map(|m| promproto::encode(&m.families()))
            .unwrap_or_default();
        return (promproto::MEDIA_TYPE, Bytes::from(body));
    }
    (OPENMETRICS, Bytes::from(openmetrics::encode(&e.registry)))
}

async fn answer(
    req: Request<Incoming>,
    exporters: Arc<Exporters>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let reply = |status: StatusCode, kind: &str, body: Bytes| {
        let mut r = Response::new(Full::new(body));
        *r.status_mut() = status;
        if let Ok(v) = kind.parse() {
            r.headers_mut().insert(header::CONTENT_TYPE, v);
        }
        r
    };
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return Ok(reply(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            Bytes::from_static(b"only GET\n"),
        ));
    }
    Ok(match req.uri().path() {
        "/metrics" => {
            let (kind, body) = exposition(&req, &exporters);
            reply(StatusCode::OK, kind, body)
        }
        "/healthz" => reply(StatusCode::OK, "text/plain", Bytes::from_static(b"ok\n")),
        _ => reply(
            StatusCode::NOT_FOUND,
            "text/plain",
            Bytes::from_static(b"not found: tracer serves /metrics and /healthz\n"),
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_default_to_loopback() {
        assert_eq!(parse_addr("9464"), Ok("127.0.0.1:9464".parse().unwrap()));
        assert_eq!(parse_addr(":9464"), Ok("127.0.0.1:9464".parse().unwrap()));
        assert_eq!(parse_addr("0.0.0.0:80"), Ok("0.0.0.0:80".parse().unwrap()));
        assert_eq!(parse_addr("[::1]:9464"), Ok("[::1]:9464".parse().unwrap()));
        for bad in ["", "host:9464", "127.0.0.1", "127.0.0.1:99999", "9464x"] {
            let e = parse_addr(bad).unwrap_err();
            assert!(!e.contains('\n'), "{e}");
        }
    }

    #[test]
    fn protobuf_is_served_when_preferred() {
        // Prometheus 2.42 with --enable-feature=native-histograms.
        assert!(prefers_protobuf(
            "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited,application/openmetrics-text;version=1.0.0;q=0.8,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
        ));
        // curl -H with spaces and another case.
        assert!(prefers_protobuf(
            "Application/Vnd.Google.Protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited"
        ));
        // Without the feature flag: text first.
        assert!(!prefers_protobuf(
            "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
        ));
        // Text preferred over protobuf; another protobuf encoding; another message.
        assert!(!prefers_protobuf(
            "text/plain,application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.5"
        ));
        assert!(!prefers_protobuf(
            "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=text"
        ));
        assert!(!prefers_protobuf(
            "application/vnd.google.protobuf;proto=other.Message;encoding=delimited"
        ));
        assert!(!prefers_protobuf(
            "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0"
        ));
        assert!(!prefers_protobuf(""));
        assert!(!prefers_protobuf("*/*"));
    }
}
