//! The metrics in the Prometheus protobuf exposition format, for scrapes that ask for it
//! (Prometheus does with `--enable-feature=native-histograms`): the only exposition format
//! that carries native histograms. Each family of [`Metrics::families`] is one
//! `io.prometheus.client.MetricFamily` message (Prometheus's `metrics.proto`, in
//! client_model), length-delimited; histograms carry both their classic buckets and their
//! native ones (schema 0, [`Hist::native`]), so a scraper that keeps classic buckets still
//! has them.
//!
//! Written straight from the families, field by field, into reused buffers: building the
//! messages first (prometheus-client's encoder does, with a copy of every label per
//! series) cost twice the CPU of the text at 10000 series. The unit tests read the output
//! back with prometheus-client's messages, generated from `metrics.proto`.
//!
//! [`Metrics::families`]: super::metrics::Metrics::families
use super::metrics::{Family, Hist, Kind, NATIVE_ZERO_THRESHOLD, Num, Point};

/// The media type of this format, as a scrape asks for it and as it is answered.
pub const MEDIA_TYPE: &str =
    "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited";

/// Field numbers of `metrics.proto`.
mod field {
    pub const FAMILY_NAME: u32 = 1;
    pub const FAMILY_HELP: u32 = 2;
    pub const FAMILY_TYPE: u32 = 3;
    pub const FAMILY_METRIC: u32 = 4;
    pub const METRIC_LABEL: u32 = 1;
    pub const METRIC_GAUGE: u32 = 2;
    pub const METRIC_COUNTER: u32 = 3;
    pub const METRIC_HISTOGRAM: u32 = 7;
    pub const LABEL_NAME: u32 = 1;
    pub const LABEL_VALUE: u32 = 2;
    /// `Gauge.value` and `Counter.value`.
    pub const VALUE: u32 = 1;
    pub const HIST_COUNT: u32 = 1;
    pub const HIST_SUM: u32 = 2;
    pub const HIST_BUCKET: u32 = 3;
    pub const HIST_SCHEMA: u32 = 5;
    pub const HIST_ZERO_THRESHOLD: u32 = 6;
    pub const HIST_ZERO_COUNT: u32 = 7;
    pub const HIST_POSITIVE_SPAN: u32 = 12;
    pub const HIST_POSITIVE_DELTA: u32 = 13;
    pub const BUCKET_CUMULATIVE: u32 = 1;
    pub const BUCKET_UPPER: u32 = 2;
    pub const SPAN_OFFSET: u32 = 1;
    pub const SPAN_LENGTH: u32 = 2;
}

/// `MetricType` values.
const COUNTER: u64 = 0;
const GAUGE: u64 = 1;
const HISTOGRAM: u64 = 4;

/// Wire types.
const VARINT: u32 = 0;
const FIXED64: u32 = 1;
const LEN: u32 = 2;

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn varint_len(v: u64) -> usize {
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

/// `sint32`/`sint64`'s encoding.
fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn key(out: &mut Vec<u8>, field: u32, wire: u32) {
    varint(out, u64::from(field << 3 | wire));
}

fn uint(out: &mut Vec<u8>, field: u32, v: u64) {
    key(out, field, VARINT);
    varint(out, v);
}

fn double(out: &mut Vec<u8>, field: u32, v: f64) {
    key(out, field, FIXED64);
    out.extend_from_slice(&v.to_le_bytes());
}

fn bytes(out: &mut Vec<u8>, field: u32, b: &[u8]) {
    key(out, field, LEN);
    varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// A field of a message whose length is known before it is written (keys of fields 1-15
/// are one byte).
fn message_head(out: &mut Vec<u8>, field: u32, len: usize) {
    key(out, field, LEN);
    varint(out, len as u64);
}

/// The buffers one exposition reuses for its nested messages.
#[derive(Default)]
struct Scratch {
    family: Vec<u8>,
    metric: Vec<u8>,
    hist: Vec<u8>,
    deltas: Vec<u8>,
}

/// The exposition of `families`: each with series, one length-delimited `MetricFamily`.
pub fn encode(families: &[Family]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut s = Scratch::default();
    for f in families.iter().filter(|f| !f.series.is_empty()) {
        s.family.clear();
        let (kind, suffix) = match f.kind {
            // A counter's samples are named NAME_total, as in the text.
            Kind::Counter => (COUNTER, "_total"),
            Kind::Gauge => (GAUGE, ""),
            Kind::Histogram => (HISTOGRAM, ""),
        };
        key(&mut s.family, field::FAMILY_NAME, LEN);
        varint(&mut s.family, (f.name.len() + suffix.len()) as u64);
        s.family.extend_from_slice(f.name.as_bytes());
        s.family.extend_from_slice(suffix.as_bytes());
        bytes(&mut s.family, field::FAMILY_HELP, f.help.as_bytes());
        uint(&mut s.family, field::FAMILY_TYPE, kind);
        for (labels, point) in &f.series {
            s.metric.clear();
            for (k, v) in labels {
                let len =
                    2 + varint_len(k.len() as u64) + k.len() + varint_len(v.len() as u64) + v.len();
                message_head(&mut s.metric, field::METRIC_LABEL, len);
                bytes(&mut s.metric, field::LABEL_NAME, k.as_bytes());
                bytes(&mut s.metric, field::LABEL_VALUE, v.as_bytes());
            }
            match (f.kind, point) {
                (_, Point::Hist(h)) => {
                    histogram(&mut s.hist, &mut s.deltas, h);
                    bytes(&mut s.metric, field::METRIC_HISTOGRAM, &s.hist);
                }
                (Kind::Gauge, Point::Num(n)) => {
                    let v = match *n {
                        Num::U(v) => v as f64,
                        Num::I(v) => v as f64,
                        Num::F(v) => v,
                    };
                    message_head(&mut s.metric, field::METRIC_GAUGE, 9);
                    double(&mut s.metric, field::VALUE, v);
                }
                (_, Point::Num(n)) => {
                    let v = match *n {
                        Num::U(v) => v as f64,
                        Num::I(v) => v.max(0) as f64,
                        Num::F(v) => v,
                    };
                    message_head(&mut s.metric, field::METRIC_COUNTER, 9);
                    double(&mut s.metric, field::VALUE, v);
                }
            }
            bytes(&mut s.family, field::FAMILY_METRIC, &s.metric);
        }
        varint(&mut out, s.family.len() as u64);
        out.extend_from_slice(&s.family);
    }
    out
}

/// A `Histogram` message: count, sum, the classic buckets (cumulative, `+Inf` last) and
/// the native ones.
fn histogram(out: &mut Vec<u8>, deltas: &mut Vec<u8>, h: &Hist) {
    out.clear();
    uint(out, field::HIST_COUNT, h.count());
    double(out, field::HIST_SUM, h.sum_seconds());
    let mut cumulative = 0;
    for (upper, n) in h.classic() {
        cumulative += n;
        message_head(out, field::HIST_BUCKET, 1 + varint_len(cumulative) + 9);
        uint(out, field::BUCKET_CUMULATIVE, cumulative);
        double(out, field::BUCKET_UPPER, upper);
    }
    let n = h.native();
    uint(out, field::HIST_SCHEMA, zigzag(0));
    double(out, field::HIST_ZERO_THRESHOLD, NATIVE_ZERO_THRESHOLD);
    uint(out, field::HIST_ZERO_COUNT, n.zero_count);
    for &(offset, length) in &n.spans {
        let (o, l) = (zigzag(i64::from(offset)), u64::from(length));
        message_head(
            out,
            field::HIST_POSITIVE_SPAN,
            2 + varint_len(o) + varint_len(l),
        );
        uint(out, field::SPAN_OFFSET, o);
        uint(out, field::SPAN_LENGTH, l);
    }
    if !n.deltas.is_empty() {
        // Packed.
        deltas.clear();
        for &d in &n.deltas {
            varint(deltas, zigzag(d));
        }
        bytes(out, field::HIST_POSITIVE_DELTA, deltas);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    // Messages generated from Prometheus's metrics.proto: an independent reading.
    use prometheus_client::encoding::prometheus_protobuf::prometheus_data_model::{
        BucketSpan, Histogram, Metric, MetricFamily, MetricType,
    };
    use prost::Message;
    use tracer_common::hist;

    use super::*;
    use crate::sink::{
        metrics::{Hist, Metrics, NATIVE_ZERO_THRESHOLD, Options, tests::report},
        openmetrics,
    };

    /// Every message of an exposition, read back.
    fn decode(mut b: &[u8]) -> Vec<MetricFamily> {
        let mut out = Vec::new();
        while !b.is_empty() {
            out.push(MetricFamily::decode_length_delimited(&mut b).unwrap());
        }
        out
    }

    /// A histogram of `(ns, n)` values, as the kernel would have counted them.
    fn hist_of(values: &[(u64, u64)]) -> Hist {
        let mut k = vec![0u64; hist::BUCKETS];
        let mut sum = 0;
        for &(v, n) in values {
            k[hist::bucket(v)] += n;
            sum += v * n;
        }
        let mut h = Hist::default();
        h.add(&k, sum);
        h
    }

    fn spans(v: &[(i32, u32)]) -> Vec<BucketSpan> {
        v.iter()
            .map(|&(offset, length)| BucketSpan { offset, length })
            .collect()
    }

    /// Hand-computed: bucket i is [2^(i+29), 2^(i+30)) ns. 1 ns is bucket -29; 3 ms
    /// (2^21.5 ns) bucket -8; 5 ms and 7 ms (2^22.3, 2^22.7) bucket -7; 20 ms (2^24.3)
    /// bucket -5, after two empty ones; 1 s (2^29.9 ns) bucket 0; 0 ns the zero bucket.
    #[test]
    fn native_buckets_are_spans_and_deltas_of_the_powers_of_two() {
        let h = hist_of(&[
            (0, 2),
            (1, 1),
            (3_000_000, 5),
            (5_000_000, 2),
            (7_000_000, 1),
            (20_000_000, 4),
            (1_000_000_000, 4),
        ]);
        let n = h.native();
        assert_eq!(n.zero_count, 2);
        // -29 alone; 20 empty; -8 and -7; -6 empty; -5; -4 to -1 empty; 0.
        assert_eq!(n.spans, vec![(-29, 1), (20, 2), (1, 1), (4, 1)]);
        // Counts 1, 5, 3, 4, 4 as deltas from the bucket before (across spans too).
        assert_eq!(n.deltas, vec![1, 4, -2, 1, 0]);
        let total: i64 = n
            .deltas
            .iter()
            .scan(0, |c, d| {
                *c += d;
                Some(*c)
            })
            .sum();
        assert_eq!(total as u64 + n.zero_count, h.count());
    }

    /// Values at the edges: 2^k ns and 2^k - 1 ns fall in neighbouring buckets (the
    /// kernel's buckets hold their lower bound); 1 s (bucket 0's upper bound) is counted
    /// there, and so is 1.07 s, which Prometheus would put in bucket 1: the mapping counts
    /// such values one bucket low, never high.
    #[test]
    fn native_bucket_edges() {
        let one = |ns: u64| hist_of(&[(ns, 1)]).native().spans;
        assert_eq!(one((1 << 21) - 1), vec![(-9, 1)]);
        assert_eq!(one(1 << 21), vec![(-8, 1)]);
        assert_eq!(one(1_000_000_000), vec![(0, 1)]);
        assert_eq!(one(1_073_741_823), vec![(0, 1)]);
        assert_eq!(one(1_073_741_824), vec![(1, 1)]);
        // The kernel's open last bucket: (512, 1024] s.
        assert_eq!(one(1 << 45), vec![(10, 1)]);
        // A single bucket.
        let n = hist_of(&[(3_000_000, 7)]).native();
        assert_eq!((n.spans, n.deltas), (vec![(-8, 1)], vec![7]));
    }

    /// Only zeros, or nothing: the zero bucket and one empty span, so that the histogram is
    /// still a native one.
    #[test]
    fn a_histogram_without_positive_buckets_has_an_empty_span() {
        let n = hist_of(&[(0, 3)]).native();
        assert_eq!((n.zero_count, n.spans, n.deltas), (3, vec![(0, 0)], vec![]));
        let n = Hist::default().native();
        assert_eq!((n.zero_count, n.spans, n.deltas), (0, vec![(0, 0)], vec![]));
    }

    fn opts() -> Options {
        Options {
            series_limit: 10_000,
            label: None,
            pid_label: false,
        }
    }

    /// The series of `f` whose `syscall` label is `name`.
    fn of_syscall<'a>(f: &'a MetricFamily, name: &str) -> &'a Metric {
        f.metric
            .iter()
            .find(|m| {
                m.label
                    .iter()
                    .any(|l| l.name == "syscall" && l.value == name)
            })
            .unwrap()
    }

    /// The exposition decodes into every family of the text, each with its type; a latency
    /// histogram has its classic buckets (cumulative, the same as the text's) and its
    /// native ones.
    #[test]
    fn the_exposition_holds_every_family_with_both_kinds_of_buckets() {
        let mut m = Metrics::new(opts());
        for _ in 0..2 {
            m.add(&report("app", 110, 40, 300, 0)); // getppid
            m.add(&report("app", 35, 6, 3_000_000, 0)); // nanosleep
        }
        let fams = decode(&encode(&m.families()));
        let text = openmetrics::encode(&openmetrics::registry(Arc::new(Mutex::new(m))));
        let text_families: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .map(|l| l.split(' ').next().unwrap())
            .collect();
        // Counters are named with their _total in protobuf.
        let names: Vec<String> = fams
            .iter()
            .map(|f| {
                if f.r#type == MetricType::Counter as i32 {
                    f.name.trim_end_matches("_total").to_string()
                } else {
                    f.name.clone()
                }
            })
            .collect();
        assert_eq!(names, text_families);
        let calls = fams
            .iter()
            .find(|f| f.name == "tracer_syscalls_total")
            .unwrap();
        assert_eq!(calls.r#type, MetricType::Counter as i32);
        let getppid = of_syscall(calls, "getppid");
        assert_eq!(getppid.counter.as_ref().unwrap().value, 80.0);
        let lat = fams
            .iter()
            .find(|f| f.name == "tracer_syscall_duration_seconds")
            .unwrap();
        assert_eq!(lat.r#type, MetricType::Histogram as i32);
        let sleep = of_syscall(lat, "nanosleep");
        let h: &Histogram = sleep.histogram.as_ref().unwrap();
        assert_eq!((h.sample_count, h.sample_sum), (12, 36_000_000f64 / 1e9));
        // Classic: cumulative, up to +Inf, the 3 ms calls from the 2^22 ns bucket on.
        let le_4ms = h
            .bucket
            .iter()
            .find(|b| b.upper_bound == (1u64 << 22) as f64 / 1e9)
            .unwrap();
        assert_eq!(le_4ms.cumulative_count, 12);
        let le_2ms = h
            .bucket
            .iter()
            .find(|b| b.upper_bound == (1u64 << 21) as f64 / 1e9)
            .unwrap();
        assert_eq!(le_2ms.cumulative_count, 0);
        assert_eq!(h.bucket.last().unwrap().upper_bound, f64::INFINITY);
        assert_eq!(h.bucket.last().unwrap().cumulative_count, 12);
        // Native: schema 0, one bucket (-8: (1.95, 3.91] ms) of 12.
        assert_eq!(h.schema, 0);
        assert_eq!(h.zero_threshold, NATIVE_ZERO_THRESHOLD);
        assert_eq!(h.zero_count, 0);
        assert_eq!(h.positive_span, spans(&[(-8, 1)]));
        assert_eq!(h.positive_delta, vec![12]);
        assert!(h.negative_span.is_empty() && h.negative_delta.is_empty());
        // The 300 ns getppid: bucket -21 ((238, 477] ns).
        let g = of_syscall(lat, "getppid").histogram.as_ref().unwrap();
        assert_eq!(
            (g.positive_span.clone(), g.positive_delta.clone()),
            (spans(&[(-21, 1)]), vec![80])
        );
        // Labels as in the text.
        let labels: Vec<(&str, &str)> = sleep
            .label
            .iter()
            .map(|l| (l.name.as_str(), l.value.as_str()))
            .collect();
        assert_eq!(
            labels,
            [
                ("service", "app"),
                ("comm", "app"),
                ("syscall", "nanosleep"),
                ("abi", "x86_64")
            ]
        );
    }

    /// A sample: its name, labels and value (as bits, to compare exactly).
    type Sample = (String, Vec<(String, String)>, u64);

    /// Parses a text sample `name{k="v",...} value` into (name, labels, value).
    fn text_sample(l: &str) -> (String, Vec<(String, String)>, f64) {
        let (series, v) = l.rsplit_once(' ').unwrap();
        let (name, labels) = series.split_once('{').unwrap_or((series, "}"));
        let labels = labels
            .trim_end_matches('}')
            .split("\",")
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once("=\"").unwrap();
                (k.to_string(), v.trim_end_matches('"').to_string())
            })
            .collect();
        let v = match v {
            "+Inf" => f64::INFINITY,
            v => v.parse().unwrap(),
        };
        (name.to_string(), labels, v)
    }

    /// Every sample of the text, from the protobuf: counters, gauges, and each histogram's
    /// cumulative buckets (by `le`), sum and count; none more, none less; and each native
    /// histogram's buckets add up to its count.
    #[test]
    fn the_protobuf_holds_every_sample_of_the_text() {
        let mut m = Metrics::new(opts());
        m.add(&report("app", 110, 40, 300, 3));
        m.add(&report("app", 35, 6, 3_000_000, 0));
        m.add(&report("db", 0, 9, 70_000, 0));
        let fams = decode(&encode(&m.families()));
        let text = openmetrics::encode(&openmetrics::registry(Arc::new(Mutex::new(m))));
        let mut want: Vec<Sample> = text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| {
                let (n, mut l, v) = text_sample(l);
                // `le` as a number: the text writes it its way.
                for (k, x) in &mut l {
                    if k == "le" {
                        *x = text_sample(&format!("x {x}")).2.to_string();
                    }
                }
                (n, l, v.to_bits())
            })
            .collect();
        let mut got = Vec::new();
        for f in &fams {
            for m in &f.metric {
                let l: Vec<(String, String)> = m
                    .label
                    .iter()
                    .map(|p| (p.name.clone(), p.value.clone()))
                    .collect();
                if let Some(c) = &m.counter {
                    got.push((f.name.clone(), l.clone(), c.value.to_bits()));
                }
                if let Some(g) = &m.gauge {
                    got.push((f.name.clone(), l.clone(), g.value.to_bits()));
                }
                if let Some(h) = &m.histogram {
                    for b in &h.bucket {
                        let mut l = l.clone();
                        l.push(("le".into(), b.upper_bound.to_string()));
                        got.push((
                            format!("{}_bucket", f.name),
                            l,
                            (b.cumulative_count as f64).to_bits(),
                        ));
                    }
                    got.push((format!("{}_sum", f.name), l.clone(), h.sample_sum.to_bits()));
                    got.push((
                        format!("{}_count", f.name),
                        l.clone(),
                        (h.sample_count as f64).to_bits(),
                    ));
                    let native: u64 = h
                        .positive_delta
                        .iter()
                        .scan(0i64, |c, d| {
                            *c += d;
                            Some(*c as u64)
                        })
                        .sum();
                    assert_eq!(native + h.zero_count, h.sample_count, "{}", f.name);
                    assert!(!h.positive_span.is_empty(), "{}", f.name);
                }
            }
        }
        // Label order aside (the text writes `le` first).
        for (_, l, _) in want.iter_mut().chain(got.iter_mut()) {
            l.sort();
        }
        want.sort();
        got.sort();
        assert!(want.len() > 100, "{text}");
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(&want) {
            assert_eq!(g, w);
        }
    }
}
