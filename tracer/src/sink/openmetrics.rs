//! The metrics in the OpenMetrics text format, through prometheus-client: a `Collector`
//! that writes [`Metrics::families`] at each scrape, under the metrics' lock. (A scrape
//! that asks for protobuf gets `promproto.rs`'s encoding of the same families.)
use std::sync::{Arc, Mutex};

use prometheus_client::{
    encoding::{DescriptorEncoder, EncodeMetric, MetricEncoder, NoLabelSet, text},
    metrics::{MetricType, counter::ConstCounter, gauge::ConstGauge},
    registry::Registry,
};

use super::metrics::{Hist, Kind, Metrics, Num, Point};

#[derive(Debug)]
struct Shared(Arc<Mutex<Metrics>>);

impl prometheus_client::collector::Collector for Shared {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let m = self.0.lock().map_err(|_| std::fmt::Error)?;
        for f in m.families().iter().filter(|f| !f.series.is_empty()) {
            let kind = match f.kind {
                Kind::Counter => MetricType::Counter,
                Kind::Gauge => MetricType::Gauge,
                Kind::Histogram => MetricType::Histogram,
            };
            let mut family = enc.encode_descriptor(f.name, f.help, None, kind)?;
            for (labels, point) in &f.series {
                let value = Value(f.kind, *point);
                if labels.is_empty() {
                    // A family without labels has one series.
                    value.encode(family)?;
                    break;
                }
                value.encode(family.encode_family(labels)?)?;
            }
        }
        Ok(())
    }
}

/// A series' value as prometheus-client encodes it.
#[derive(Debug)]
struct Value<'a>(Kind, Point<'a>);

impl EncodeMetric for Value<'_> {
    fn encode(&self, enc: MetricEncoder) -> Result<(), std::fmt::Error> {
        match (self.0, self.1) {
            (_, Point::Hist(h)) => encode_hist(enc, h),
            (Kind::Gauge, Point::Num(Num::U(v))) => ConstGauge::new(v as i64).encode(enc),
            (Kind::Gauge, Point::Num(Num::I(v))) => ConstGauge::new(v).encode(enc),
            (Kind::Gauge, Point::Num(Num::F(v))) => ConstGauge::new(v).encode(enc),
            (_, Point::Num(Num::U(v))) => ConstCounter::new(v).encode(enc),
            (_, Point::Num(Num::I(v))) => ConstCounter::new(v.max(0) as u64).encode(enc),
            (_, Point::Num(Num::F(v))) => ConstCounter::new(v).encode(enc),
        }
    }

    fn metric_type(&self) -> MetricType {
        match self.0 {
            Kind::Counter => MetricType::Counter,
            Kind::Gauge => MetricType::Gauge,
            Kind::Histogram => MetricType::Histogram,
        }
    }
}

fn encode_hist(mut enc: MetricEncoder, h: &Hist) -> Result<(), std::fmt::Error> {
    enc.encode_histogram::<NoLabelSet>(h.sum_seconds(), h.count(), &h.classic(), None)
}

/// A registry that exports `metrics`.
pub fn registry(metrics: Arc<Mutex<Metrics>>) -> Registry {
    let mut r = Registry::default();
    r.register_collector(Box::new(Shared(metrics)));
    r
}

/// The exposition of `registry` in the OpenMetrics text format.
pub fn encode(registry: &Registry) -> String {
    let mut out = String::new();
    // Writing to a String cannot fail; a poisoned lock leaves the exposition cut short.
    let _ = text::encode(&mut out, registry);
    out
}
