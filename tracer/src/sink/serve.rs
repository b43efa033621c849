//! The metrics endpoint (`--listen`): an HTTP/1.1 server (hyper) on tracer's runtime that
//! answers `GET /metrics` with the OpenMetrics text of the run's metrics and `GET /healthz`
//! with `ok`. The address is bound when tracer starts, so that one in use or not allowed
//! is a one-line error before anything is loaded.
use std::{
    convert::Infallible,
    net::{SocketAddr, TcpListener},
    sync::Arc,
    time::Duration,
};

use anyhow::{Result, anyhow};
use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Request, Response, StatusCode, body::Incoming, header, service::service_fn};
use hyper_util::rt::{TokioIo, TokioTimer};

use prometheus_client::registry::Registry;

use super::openmetrics as metrics;

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
pub fn spawn(listener: TcpListener, registry: Registry) -> Result<()> {
    let registry = Arc::new(registry);
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
            let registry = registry.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req| answer(req, registry.clone()));
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

async fn answer(
    req: Request<Incoming>,
    registry: Arc<Registry>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let reply = |status: StatusCode, kind: &str, body: String| {
        let mut r = Response::new(Full::new(Bytes::from(body)));
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
            "only GET\n".into(),
        ));
    }
    Ok(match req.uri().path() {
        "/metrics" => reply(StatusCode::OK, OPENMETRICS, metrics::encode(&registry)),
        "/healthz" => reply(StatusCode::OK, "text/plain", "ok\n".into()),
        _ => reply(
            StatusCode::NOT_FOUND,
            "text/plain",
            "not found: tracer serves /metrics and /healthz\n".into(),
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
}
