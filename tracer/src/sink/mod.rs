//! Where reports go. The engine builds each report once and hands it to every sink; a sink
//! says which reports it takes (every interval, or the final one only) and writes them its
//! way. Text and NDJSON writers are sinks; the metrics endpoint is one (`endpoint.rs`,
//! with its state in `metrics.rs`, its server in `serve.rs`); the live view (`--tui`) is
//! `tui.rs`; an event stream would be a further sink, in a file of its own.
pub mod endpoint;
pub mod metrics;
pub mod openmetrics;
#[cfg(feature = "otlp")]
pub mod otlp;
mod own;
pub mod promproto;
pub mod serve;
pub mod tui;

use std::{
    io::{BufWriter, Write},
    path::PathBuf,
};

use anyhow::{Context as _, Result};

use crate::{
    cli::{Cli, Format},
    model::{
        Report, ReportKind,
        strace::{self, Item, StreamSummary},
    },
    render,
};

pub trait Sink {
    /// Whether this sink takes interval reports (the final report goes to every sink).
    fn wants_intervals(&self) -> bool;
    /// Whether the interval reports it takes must tile the run from its start, each one
    /// interval long (a program reading them), rather than come early at first (a person
    /// waiting to see something).
    fn wants_aligned_intervals(&self) -> bool;
    /// Called once the programs are attached, on the engine's runtime, before any report.
    fn start(&mut self) -> Result<()> {
        Ok(())
    }
    fn write(&mut self, report: &Report) -> Result<()>;
    /// After the final report: what the sink still has to do (a network push), for the
    /// engine to wait for.
    fn finish(&mut self) -> Option<std::pin::Pin<Box<dyn std::future::Future<Output = ()>>>> {
        None
    }
    /// Streamed calls (`--trace`), as they come; sinks that do not show them ignore them.
    fn calls(&mut self, _items: &[Item]) -> Result<()> {
        Ok(())
    }
    /// The call stream's totals, once, just before the final report.
    fn stream_summary(&mut self, _summary: &StreamSummary) -> Result<()> {
        Ok(())
    }
    /// The launched command's stdout and stderr (a pipe; `--tui` gives it one, see
    /// `target::launch`), before `start`: a sink that shows it keeps it, else hands it
    /// back. `t0_ns`: the run's start (monotonic), for the lines' times.
    fn command_output(
        &mut self,
        _who: &crate::model::ProcessInfo,
        out: std::os::fd::OwnedFd,
        _t0_ns: u64,
    ) -> Option<std::os::fd::OwnedFd> {
        Some(out)
    }
    /// For a sink that can end the run (a live view's `q`): taken once, after `start`; the
    /// run ends when it is sent, or dropped.
    fn stop_request(&mut self) -> Option<tokio::sync::oneshot::Receiver<()>> {
        None
    }
}

/// A report writer: text for people, NDJSON for programs, to standard output or a file.
pub struct Writer {
    format: Format,
    out: Box<dyn Write>,
    /// Said in errors: "standard output" or the file's (printable) path.
    name: String,
    intervals: bool,
}

impl Writer {
    /// A writer of `format`. Text shows every interval; JSON only with `--interval`.
    pub fn new(format: Format, out: Box<dyn Write>, name: String, interval_given: bool) -> Self {
        Self {
            format,
            out,
            name,
            intervals: format == Format::Text || interval_given,
        }
    }
}

impl Writer {
    /// No interval reports when `yes` (the final one only).
    pub fn final_only(mut self, yes: bool) -> Self {
        if yes {
            self.intervals = false;
        }
        self
    }
}

impl Sink for Writer {
    fn wants_intervals(&self) -> bool {
        self.intervals
    }

    fn wants_aligned_intervals(&self) -> bool {
        self.intervals && self.format == Format::Json
    }

    fn calls(&mut self, items: &[Item]) -> Result<()> {
        let mut text = String::new();
        for item in items {
            match (self.format, item) {
                (Format::Json, _) => text.push_str(&strace::json_line(item)),
                (Format::Text, Item::Call(c)) => c.write_line(&mut text),
                (Format::Text, Item::Lost(n)) => text.push_str(&strace::lost_line(*n)),
            }
            text.push('\n');
        }
        self.out
            .write_all(text.as_bytes())
            .and_then(|()| self.out.flush())
            .with_context(|| format!("cannot write the calls to {}", self.name))
    }

    fn stream_summary(&mut self, summary: &StreamSummary) -> Result<()> {
        let line = match self.format {
            Format::Json => summary.json().to_string(),
            Format::Text => summary.line(),
        };
        writeln!(self.out, "{line}")
            .with_context(|| format!("cannot write the calls to {}", self.name))
    }

    fn write(&mut self, report: &Report) -> Result<()> {
        if report.kind == ReportKind::Interval && !self.intervals {
            return Ok(());
        }
        render::write(&mut *self.out, self.format, report)
            .with_context(|| format!("cannot write the report to {}", self.name))
    }
}

/// A `--sink FORMAT:FILE` value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SinkSpec {
    pub format: Format,
    pub path: PathBuf,
}

/// Parses `FORMAT:FILE` (`json:/var/log/tracer.ndjson`, `text:run.txt`).
pub fn parse_spec(s: &str) -> Result<SinkSpec, String> {
    let Some((format, path)) = s.split_once(':') else {
        return Err(format!(
            "'{s}' is not FORMAT:FILE (for example json:/var/log/tracer.ndjson)"
        ));
    };
    let format = match format {
        "text" => Format::Text,
        "json" => Format::Json,
        other => return Err(format!("'{other}' is not a format (text or json)")),
    };
    if path.is_empty() {
        return Err(format!("'{s}' names no file"));
    }
    Ok(SinkSpec {
        format,
        path: path.into(),
    })
}

/// The run's sinks: `--output` to standard output or `-o FILE` (with `--listen` or
/// `--otlp`, only when one of them is given), then each `--sink`, then the metrics
/// endpoint and the OTLP push. Files are opened
/// and the address bound now (a bad one costs nothing), files safely (see
/// [`crate::output`]).
pub fn open_all(cli: &Cli) -> Result<Vec<Box<dyn Sink>>> {
    let interval_given = cli.interval.is_some();
    // With --trace the calls are the live view: text reports come at the end only, unless
    // --interval asks for them.
    let streaming = cli.trace_spec().is_some() && !interval_given;
    let mut sinks: Vec<Box<dyn Sink>> = Vec::new();
    let format = cli.output.unwrap_or(Format::Text);
    match &cli.output_file {
        Some(path) => sinks.push(Box::new(
            file_writer(format, path, interval_given)?.final_only(streaming),
        )),
        // The view takes standard output, and prints the final summary there at its end.
        None if cli.tui => {}
        None if !cli.serving() || cli.output.is_some() => sinks.push(Box::new(
            Writer::new(
                format,
                Box::new(std::io::stdout().lock()),
                "standard output".into(),
                interval_given,
            )
            .final_only(streaming),
        )),
        None => {}
    }
    for s in &cli.sinks {
        sinks.push(Box::new(file_writer(s.format, &s.path, interval_given)?));
    }
    if cli.tui {
        sinks.push(Box::new(tui::TuiSink::new(cli)));
    }
    if let Some(addr) = cli.listen {
        sinks.push(Box::new(endpoint::MetricsSink::open(cli, addr)?));
    }
    if let Some(url) = &cli.otlp {
        #[cfg(feature = "otlp")]
        sinks.push(Box::new(otlp::OtlpSink::open(cli, url)?));
        #[cfg(not(feature = "otlp"))]
        anyhow::bail!("--otlp {url}: this tracer was built without its otlp feature");
    }
    Ok(sinks)
}

fn file_writer(format: Format, path: &std::path::Path, interval_given: bool) -> Result<Writer> {
    let file = crate::output::open(path)?;
    let name = render::term::printable(&path.to_string_lossy()).into_owned();
    Ok(Writer::new(
        format,
        Box::new(BufWriter::new(file)),
        name,
        interval_given,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ProcessInfo, Sample};
    use std::{cell::RefCell, rc::Rc};

    /// A `Write` whose bytes the test keeps.
    #[derive(Clone, Default)]
    struct Shared(Rc<RefCell<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.borrow_mut().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn report(kind: ReportKind) -> Report {
        let targets = [ProcessInfo {
            pid: 7,
            comm: "w".into(),
        }];
        Report::build(
            &crate::model::window(kind, &Sample::default(), 1.0),
            &crate::model::ctx(&targets),
        )
    }

    #[test]
    fn json_takes_intervals_only_when_asked_text_always() {
        for (format, interval_given, lines) in [
            (Format::Json, false, 1),
            (Format::Json, true, 3),
            (Format::Text, false, 3),
        ] {
            let buf = Shared::default();
            let mut w = Writer::new(format, Box::new(buf.clone()), "t".into(), interval_given);
            for kind in [
                ReportKind::Interval,
                ReportKind::Interval,
                ReportKind::Final,
            ] {
                w.write(&report(kind)).unwrap();
            }
            let out = String::from_utf8(buf.0.borrow().clone()).unwrap();
            let reports = match format {
                Format::Json => out.lines().count(),
                Format::Text => out.matches("--- ").count() + out.matches("=== ").count(),
            };
            assert_eq!(reports, lines, "{format:?} {interval_given}: {out}");
            assert_eq!(
                w.wants_aligned_intervals(),
                format == Format::Json && interval_given
            );
        }
    }

    #[test]
    fn specs_are_format_colon_file() {
        assert_eq!(
            parse_spec("json:/var/log/t.ndjson"),
            Ok(SinkSpec {
                format: Format::Json,
                path: "/var/log/t.ndjson".into()
            })
        );
        // Only the first colon separates: a path may hold more.
        assert_eq!(parse_spec("text:a:b").unwrap().path, PathBuf::from("a:b"));
        for bad in ["json", "xml:f", "json:", ":f"] {
            let e = parse_spec(bad).unwrap_err();
            assert!(!e.contains('\n'), "{e}");
        }
    }
}
