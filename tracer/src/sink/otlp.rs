//! OTLP/HTTP push (`--otlp URL`, issue 13): after every interval, the run's metrics (the
//! same families as the Prometheus endpoint's, [`Metrics::families`]) as an OpenTelemetry
//! `ExportMetricsServiceRequest` (opentelemetry-proto's messages, protobuf), POSTed to
//! URL. Cumulative temporality: a push that fails loses nothing, the next carries it. A
//! push runs beside the engine, never holding it up; while one is in flight the next
//! interval's is not started. Failures are counted (`tracer_otlp_push_failures_total`) and
//! said on stderr, the first at once and then at most once a minute. At the end of the run
//! a last push is waited for (at most 5 s).
use std::{
    future::Future,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant, SystemTime},
};

use anyhow::{Result, anyhow, bail};
use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Request, Uri, header};
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};
use opentelemetry_proto::tonic::{
    collector::metrics::v1::ExportMetricsServiceRequest,
    common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value},
    metrics::v1::{
        AggregationTemporality, Gauge, Histogram, HistogramDataPoint, Metric, NumberDataPoint,
        ResourceMetrics, ScopeMetrics, Sum, metric::Data, number_data_point,
    },
    resource::v1::Resource,
};
use prost::Message;

use super::{
    Sink,
    metrics::{Family, Kind, Metrics, Num, Options, Point},
    own::OwnMeter,
};
use crate::{
    cli::Cli,
    model::{Report, ReportKind},
    render::term::printable,
};

/// A push not answered within this is a failure.
const PUSH_TIMEOUT: Duration = Duration::from_secs(5);
/// Failures after the first are said at most this often.
const SAY_EVERY: Duration = Duration::from_secs(60);

/// Parses `--otlp`: an `http://` URL (OTLP/HTTP, usually `http://HOST:4318/v1/metrics`).
pub fn parse_url(s: &str) -> Result<Uri, String> {
    let uri: Uri = s.parse().map_err(|_| {
        format!("'{s}' is not a URL (for example http://127.0.0.1:4318/v1/metrics)")
    })?;
    match uri.scheme_str() {
        Some("http") if uri.host().is_some() => Ok(uri),
        Some("https") => Err(format!(
            "'{s}': tracer pushes OTLP over plain HTTP (a collector on this host or a local agent); https is not supported"
        )),
        _ => Err(format!("'{s}' is not an http:// URL")),
    }
}

fn unix_ns(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

fn attribute(key: &str, value: String) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value)),
        }),
        ..Default::default()
    }
}

/// The request that carries `families` (cumulative since `start_ns`, read at `now_ns`;
/// Unix ns).
pub fn request(families: &[Family], start_ns: u64, now_ns: u64) -> ExportMetricsServiceRequest {
    let cumulative = AggregationTemporality::Cumulative as i32;
    let metrics = families
        .iter()
        .filter(|f| !f.series.is_empty())
        .map(|f| {
            let attrs = |labels: &super::metrics::Labels| {
                labels
                    .iter()
                    .map(|(k, v)| attribute(k, v.clone()))
                    .collect::<Vec<_>>()
            };
            let numbers = || {
                f.series
                    .iter()
                    .filter_map(|(l, p)| match p {
                        Point::Num(n) => Some(NumberDataPoint {
                            attributes: attrs(l),
                            start_time_unix_nano: start_ns,
                            time_unix_nano: now_ns,
                            value: Some(match *n {
                                Num::U(v) => number_data_point::Value::AsInt(v as i64),
                                Num::I(v) => number_data_point::Value::AsInt(v),
                                Num::F(v) => number_data_point::Value::AsDouble(v),
                            }),
                            ..Default::default()
                        }),
                        Point::Hist(_) => None,
                    })
                    .collect()
            };
            let data = match f.kind {
                Kind::Counter => Data::Sum(Sum {
                    data_points: numbers(),
                    aggregation_temporality: cumulative,
                    is_monotonic: true,
                }),
                Kind::Gauge => Data::Gauge(Gauge {
                    data_points: numbers(),
                }),
                Kind::Histogram => Data::Histogram(Histogram {
                    data_points: f
                        .series
                        .iter()
                        .filter_map(|(l, p)| match p {
                            Point::Hist(h) => {
                                let classic = h.classic();
                                Some(HistogramDataPoint {
                                    attributes: attrs(l),
                                    start_time_unix_nano: start_ns,
                                    time_unix_nano: now_ns,
                                    count: h.count(),
                                    sum: Some(h.sum_seconds()),
                                    bucket_counts: classic.iter().map(|(_, n)| *n).collect(),
                                    // The last bucket is open: no bound of its own.
                                    explicit_bounds: classic[..classic.len() - 1]
                                        .iter()
                                        .map(|(b, _)| *b)
                                        .collect(),
                                    ..Default::default()
                                })
                            }
                            Point::Num(_) => None,
                        })
                        .collect(),
                    aggregation_temporality: cumulative,
                }),
            };
            Metric {
                name: f.name.to_string(),
                description: f.help.to_string(),
                unit: String::new(),
                data: Some(data),
                ..Default::default()
            }
        })
        .collect();
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default();
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: vec![
                    attribute("service.name", "tracer".into()),
                    attribute("host.name", printable(&host).into_owned()),
                ],
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                scope: Some(InstrumentationScope {
                    name: "tracer".into(),
                    version: env!("CARGO_PKG_VERSION").into(),
                    ..Default::default()
                }),
                metrics,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// What the pushes share with the sink.
struct Pushes {
    in_flight: AtomicBool,
    failures: AtomicU64,
    said: std::sync::Mutex<Option<Instant>>,
}

pub struct OtlpSink {
    metrics: Metrics,
    meter: OwnMeter,
    url: Uri,
    shown: String,
    client: Client<HttpConnector, Full<Bytes>>,
    pushes: Arc<Pushes>,
    start_ns: u64,
    /// The last request, for the final push.
    last: Option<Bytes>,
}

impl OtlpSink {
    pub fn open(cli: &Cli, url: &str) -> Result<Self> {
        let url = parse_url(url).map_err(|e| anyhow!(e))?;
        let shown = printable(&url.to_string()).into_owned();
        Ok(OtlpSink {
            metrics: Metrics::new(Options::from(cli)),
            meter: OwnMeter::new(cli.bpf_stats)?,
            client: Client::builder(TokioExecutor::new()).build_http(),
            url,
            shown,
            pushes: Arc::new(Pushes {
                in_flight: AtomicBool::new(false),
                failures: AtomicU64::new(0),
                said: std::sync::Mutex::new(None),
            }),
            start_ns: unix_ns(SystemTime::now()),
            last: None,
        })
    }

    fn body(&mut self) -> Bytes {
        self.metrics
            .set_push_failures(self.pushes.failures.load(Ordering::Relaxed));
        let r = request(
            &self.metrics.families(),
            self.start_ns,
            unix_ns(SystemTime::now()),
        );
        Bytes::from(r.encode_to_vec())
    }

    /// One push, as a future that counts and says its failure.
    fn push(&self, body: Bytes) -> impl Future<Output = ()> + 'static {
        let (client, url, shown, pushes) = (
            self.client.clone(),
            self.url.clone(),
            self.shown.clone(),
            self.pushes.clone(),
        );
        async move {
            let req = Request::builder()
                .method(Method::POST)
                .uri(url)
                .header(header::CONTENT_TYPE, "application/x-protobuf")
                .body(Full::new(body));
            let result = match req {
                Ok(req) => match tokio::time::timeout(PUSH_TIMEOUT, client.request(req)).await {
                    Ok(Ok(r)) if r.status().is_success() => Ok(()),
                    Ok(Ok(r)) => Err(format!("the collector answered {}", r.status())),
                    Ok(Err(e)) => Err(cause(&e)),
                    Err(_) => Err(format!("no answer within {} s", PUSH_TIMEOUT.as_secs())),
                },
                Err(e) => Err(e.to_string()),
            };
            if let Err(why) = result {
                let n = pushes.failures.fetch_add(1, Ordering::Relaxed) + 1;
                let mut said = pushes.said.lock().unwrap_or_else(|e| e.into_inner());
                if said.is_none_or(|t| t.elapsed() >= SAY_EVERY) {
                    *said = Some(Instant::now());
                    crate::say::line(format!(
                        "tracer: pushing metrics to {shown} failed ({n} so far): {}; trying again each interval",
                        printable(&why)
                    ));
                }
            }
            pushes.in_flight.store(false, Ordering::Relaxed);
        }
    }
}

/// The innermost cause of a client error, in a few words ("connection refused").
fn cause(e: &dyn std::error::Error) -> String {
    let mut e = e;
    while let Some(inner) = e.source() {
        e = inner;
    }
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_lowercase(),
        None => s,
    }
}

impl Sink for OtlpSink {
    fn wants_intervals(&self) -> bool {
        true
    }

    fn wants_aligned_intervals(&self) -> bool {
        true
    }

    /// A collector that cannot be reached at the start is an error, said at once.
    fn start(&mut self) -> Result<()> {
        self.meter.take_inventory();
        let host = self.url.host().unwrap_or("").trim_matches(['[', ']']);
        let port = self.url.port_u16().unwrap_or(80);
        let addr = std::net::ToSocketAddrs::to_socket_addrs(&(host, port))
            .map_err(|e| anyhow!("cannot push metrics to {}: {}", self.shown, cause(&e)))?
            .next()
            .ok_or_else(|| anyhow!("cannot push metrics to {}: no address", self.shown))?;
        if let Err(e) = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(3)) {
            bail!("cannot push metrics to {}: {}", self.shown, cause(&e));
        }
        Ok(())
    }

    fn write(&mut self, report: &Report) -> Result<()> {
        if report.kind != ReportKind::Interval {
            return Ok(());
        }
        self.metrics.add(report);
        self.metrics.set_own(self.meter.measure());
        let body = self.body();
        self.last = Some(body.clone());
        if !self.pushes.in_flight.swap(true, Ordering::Relaxed) {
            tokio::spawn(self.push(body));
        }
        Ok(())
    }

    fn finish(&mut self) -> Option<Pin<Box<dyn Future<Output = ()>>>> {
        let body = self.last.take()?;
        let push = self.push(body);
        Some(Box::pin(async move {
            let _ = tokio::time::timeout(PUSH_TIMEOUT, push).await;
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_plain_http() {
        assert!(parse_url("http://127.0.0.1:4318/v1/metrics").is_ok());
        assert!(parse_url("http://collector/v1/metrics").is_ok());
        for bad in [
            "https://c:4318/v1/metrics",
            "ftp://x/",
            "4318",
            "http:///x",
            "",
        ] {
            let e = parse_url(bad).unwrap_err();
            assert!(!e.contains('\n'), "{e}");
        }
    }

    /// Counters are cumulative monotonic sums, histograms carry their bounds (the open
    /// last bucket has none) and counts, labels become attributes.
    #[test]
    fn families_become_otlp_metrics() {
        let mut h = super::super::metrics::Hist::default();
        let mut k = vec![0u64; tracer_common::hist::BUCKETS];
        k[tracer_common::hist::bucket(300)] = 5;
        h.add(&k, 1500);
        let fams = vec![
            Family {
                name: "tracer_syscalls",
                help: "h",
                kind: Kind::Counter,
                series: vec![(vec![("syscall", "read".into())], Point::Num(Num::U(7)))],
            },
            Family {
                name: "tracer_syscall_duration_seconds",
                help: "h",
                kind: Kind::Histogram,
                series: vec![(vec![], Point::Hist(&h))],
            },
        ];
        let r = request(&fams, 10, 20);
        let m = &r.resource_metrics[0].scope_metrics[0].metrics;
        let Some(Data::Sum(s)) = &m[0].data else {
            panic!("{m:?}")
        };
        assert!(s.is_monotonic);
        assert_eq!(
            s.aggregation_temporality,
            AggregationTemporality::Cumulative as i32
        );
        let p = &s.data_points[0];
        assert_eq!(p.value, Some(number_data_point::Value::AsInt(7)));
        assert_eq!((p.start_time_unix_nano, p.time_unix_nano), (10, 20));
        assert_eq!(p.attributes[0].key, "syscall");
        let Some(Data::Histogram(hist)) = &m[1].data else {
            panic!("{m:?}")
        };
        let p = &hist.data_points[0];
        assert_eq!(p.count, 5);
        assert_eq!(p.bucket_counts.len(), p.explicit_bounds.len() + 1);
        assert_eq!(p.bucket_counts.iter().sum::<u64>(), 5);
        assert_eq!(p.sum, Some(1500e-9));
    }
}
