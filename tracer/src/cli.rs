//! Command-line interface: clap types, and usage errors cut to one plain line.
use std::{ffi::OsString, path::PathBuf, process::ExitCode, time::Duration};

use clap::{Parser, ValueEnum, error::ErrorKind};

const AFTER_HELP: &str = "\
Examples:
  sudo tracer --pid 2201                      live syscall table for a running process
  sudo tracer --pid 2201 --duration 10 --output json -o run.json
  sudo tracer -- dd if=/dev/zero of=/dev/null bs=1 count=100000
  sudo tracer --trace=%file --failed -- ls /nonexistent
                                              strace mode: the failing file calls, decoded

The run ends at Ctrl-C, SIGTERM, the end of --duration, or when every traced process has
exited; tracer then prints the final summary and detaches. With a command, tracer exits
with the command's exit status (128+N if a signal N killed it).";

#[derive(Debug, Parser)]
#[command(
    name = "tracer",
    version,
    about = "Per-process tracer: syscall counts, latency and errors for one PID, live, with eBPF",
    after_help = AFTER_HELP,
    color = clap::ColorChoice::Never
)]
pub struct Cli {
    /// Trace a running process (all its threads). Repeat for several processes.
    #[arg(short, long = "pid", value_name = "PID", value_parser = parse_pid, allow_negative_numbers = true)]
    pub pids: Vec<u32>,

    /// Stop after this many seconds.
    #[arg(short, long, value_name = "SECS", value_parser = parse_secs, allow_negative_numbers = true)]
    pub duration: Option<Duration>,

    /// Seconds between live reports, at least 0.1 (text: default 1; json: one NDJSON line
    /// per interval only when given).
    #[arg(short, long, value_name = "SECS", value_parser = parse_interval, allow_negative_numbers = true)]
    pub interval: Option<Duration>,

    /// Report format [default: text].
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub output: Option<Format>,

    /// Write the report to FILE instead of standard output.
    #[arg(short = 'o', long = "output-file", value_name = "FILE")]
    pub output_file: Option<PathBuf>,

    /// Also write the reports to FILE in FORMAT (text or json), for example
    /// json:/var/log/tracer.ndjson beside the text on the terminal. Repeatable; each file
    /// gets the same reports, in its format.
    #[arg(long = "sink", value_name = "FORMAT:FILE", value_parser = crate::sink::parse_spec)]
    pub sinks: Vec<crate::sink::SinkSpec>,

    /// Also trace children forked after tracing starts (like strace -f); they are added to
    /// the kernel filter at fork, before they run. Threads are always traced.
    #[arg(short, long)]
    pub follow: bool,

    /// Trace every process named NAME (its `comm`, as `pgrep` matches it), now and
    /// whenever one takes the name later (an exec, a rename): a service restarted by its
    /// supervisor is traced again from its exec. Repeatable; their processes are counted together, per NAME.
    #[arg(long = "comm", value_name = "NAME", value_parser = parse_comm)]
    pub comms: Vec<String>,

    /// Trace every process in the cgroup at PATH (a directory under /sys/fs/cgroup, v1 or
    /// v2: a container, a systemd unit), now and whenever one is moved in later, with the
    /// children they fork. Repeatable; counted together, per cgroup.
    #[arg(long = "cgroup", value_name = "PATH")]
    pub cgroups: Vec<PathBuf>,

    /// Trace every process running the executable at PATH (like pidof), now and whenever
    /// one execs it later, with the children they fork; a file replaced at PATH (an upgrade)
    /// is followed. Repeatable; counted together, per PATH.
    #[arg(long = "exe", value_name = "PATH")]
    pub exes: Vec<PathBuf>,

    /// Serve the run's metrics at http://ADDR:PORT/metrics (OpenMetrics text, for
    /// Prometheus) and /healthz, and run until stopped, also once every target has exited;
    /// PORT alone binds 127.0.0.1. No report is written unless --output, -o or --sink asks.
    #[arg(long, value_name = "ADDR:PORT", value_parser = crate::sink::serve::parse_addr)]
    pub listen: Option<std::net::SocketAddr>,

    /// Push the run's metrics (the same as --listen serves) to an OpenTelemetry collector
    /// over OTLP/HTTP after every interval, for example http://127.0.0.1:4318/v1/metrics;
    /// like --listen, the run goes on until stopped and writes no report unless asked.
    #[arg(long, value_name = "URL", value_parser = parse_otlp)]
    pub otlp: Option<String>,

    /// The `service` label of every metric (default: each selector's name, or the target
    /// process's name).
    #[arg(long, value_name = "SERVICE", value_parser = parse_label)]
    pub label: Option<String>,

    /// Most series the metrics endpoint exports; updates of series beyond it are counted in
    /// tracer_series_overflow_total.
    #[arg(long = "max-series", value_name = "N", default_value_t = crate::sink::metrics::DEFAULT_SERIES_LIMIT)]
    pub max_series: usize,

    /// Also export each traced process's calls with a `pid` label (the busiest --processes
    /// of each interval; the rest under pid="other").
    #[arg(long = "metrics-pid")]
    pub metrics_pid: bool,

    /// Keep the kernel's run-time statistics of tracer's eBPF programs on for the run (a
    /// BPF_ENABLE_STATS descriptor; costs two clock reads per program run) and export them.
    #[arg(long = "bpf-stats")]
    pub bpf_stats: bool,

    /// List threads in the scheduling section.
    #[arg(long)]
    pub threads: bool,

    /// An event loop's iteration (from the return of one epoll_wait, poll or select to the
    /// entry of the next) this long or longer is a stall, reported with its time and what
    /// the thread did meanwhile ("100ms", "2s"; "off": none). Iteration times are kept
    /// either way.
    #[arg(long, value_name = "DURATION", default_value = "100ms", value_parser = parse_stall)]
    pub stall: Duration,

    /// List at most N traced processes in full, each with its own calls, errors, parent
    /// and (memory section) RSS and descriptors; the rest are summed as "other".
    #[arg(long = "processes", value_name = "N", default_value_t = 10)]
    pub processes: usize,

    /// Which report sections to collect (comma-separated); hooks of other sections are not
    /// attached, so they cost nothing.
    #[arg(long, value_enum, value_name = "LIST", value_delimiter = ',', default_values_t = Section::all())]
    pub sections: Vec<Section>,

    /// Time every syscall (two clock reads per call). By default a thread's first 32 calls
    /// per scheduler tick and every call that blocks are timed, and beyond that 1 call in
    /// 16, weighted 16 (counts and errors are always exact).
    #[arg(long)]
    pub exact_latency: bool,

    /// Stream the calls of the traced processes, one line each as strace prints them
    /// (all of them, or SET: syscall names and strace's classes %file, %network,
    /// %process, %memory, %signal, %desc, %ipc, comma-separated; `!` before the set
    /// inverts it). Selected in the kernel; the report still counts every call.
    #[arg(long, value_name = "SET", num_args = 0..=1, require_equals = true, default_missing_value = "all")]
    pub trace: Option<String>,

    /// Stream only the calls that fail (strace -Z); implies --trace.
    #[arg(long)]
    pub failed: bool,

    /// Stream only the calls that fail with one of these errnos (ENOENT,EACCES); implies
    /// --trace.
    #[arg(long, value_name = "LIST", value_delimiter = ',', value_parser = parse_errno)]
    pub errno: Vec<i32>,

    /// Stream only the calls that take at least DURATION (2ms, 1.5s; a plain number is
    /// seconds); implies --trace.
    #[arg(long = "slower-than", value_name = "DURATION", value_parser = parse_duration)]
    pub slower_than: Option<Duration>,

    /// Show the streamed calls' descriptors as what they are (strace -y): 3</etc/passwd>,
    /// 4<pipe:[6789]>, 5<socket:[12345]>; -yy adds sockets' protocol and addresses
    /// (5<TCP:[127.0.0.1:41234->127.0.0.1:8080]>). Read from /proc when the call is
    /// decoded, milliseconds after it; needs --trace.
    #[arg(short = 'y', long = "decode-fds", action = clap::ArgAction::Count)]
    pub decode_fds: u8,

    /// Show each streamed call's user stack after its line, symbolized (strace -k): one
    /// line per frame, JIT frames named from /tmp/perf-PID.map. Walked by frame pointers
    /// in the kernel: past code built without them, frames are skipped or the walk ends
    /// (README). Needs --trace.
    #[arg(long)]
    pub stack: bool,

    /// Size of the call stream's ring buffer (bytes, or with K or M; a power of two, at
    /// least 4K; default 8M).
    #[arg(long = "trace-buffer", value_name = "SIZE", value_parser = parse_ring_size)]
    pub trace_buffer: Option<u32>,

    /// A live full-screen view of the run (top for the traced service): syscalls, scheduling,
    /// memory, processes and events, every interval; `?` lists the keys, `q` quits. The
    /// final summary is printed as without it. Needs a terminal on standard output.
    #[arg(long)]
    pub tui: bool,

    /// Benchmark only: attach empty programs to the same hooks (the cost floor) and report
    /// nothing but the run's duration.
    #[arg(long, hide = true)]
    pub bench_floor: bool,

    /// Command to launch and trace from its exec (after `--`).
    #[arg(last = true, value_name = "CMD")]
    pub command: Vec<OsString>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

/// A report section and the hooks it needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
pub enum Section {
    /// Syscall counts, errors and latency (raw tracepoints sys_enter/sys_exit).
    Syscalls,
    /// Context switches, run-queue latency, on/off-CPU time (sched_switch, sched_wakeup,
    /// sched_wakeup_new).
    Sched,
    /// Process life: threads, children, exec, exit, signals (sched_process_fork/exec/exit,
    /// signal_generate). Needed by --follow.
    Life,
    /// Memory (heap, mappings, RSS, faults, limits), OOM kills and file descriptors (raw
    /// tracepoints sys_enter/sys_exit, rss_stat, mark_victim; /proc every 250 ms).
    Memory,
}

impl Section {
    pub fn all() -> Vec<Section> {
        Section::value_variants().to_vec()
    }
}

impl std::fmt::Display for Section {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.to_possible_value() {
            Some(v) => f.write_str(v.get_name()),
            None => Ok(()),
        }
    }
}

/// What to trace, once the flags are known to agree.
#[derive(Debug)]
pub enum Mode {
    Attach(Vec<u32>),
    Launch(Vec<OsString>),
}

impl Cli {
    /// How the kernel side times syscalls.
    pub fn timing(&self) -> tracer_common::SyscallTiming {
        if self.exact_latency {
            tracer_common::SyscallTiming::EXACT
        } else {
            tracer_common::SyscallTiming::SAMPLED
        }
    }

    /// The call stream asked for, if any.
    pub fn trace_spec(&self) -> Option<crate::model::strace::TraceSpec> {
        let implied = self.failed || !self.errno.is_empty() || self.slower_than.is_some();
        if self.trace.is_none() && !implied {
            return None;
        }
        Some(crate::model::strace::TraceSpec {
            set: self.trace.clone().unwrap_or_else(|| "all".into()),
            failed: self.failed,
            errnos: self.errno.clone(),
            slower_than: self.slower_than,
            stack: self.stack,
        })
    }

    /// Whether the run feeds a monitoring system (`--listen`, `--otlp`): it goes on until
    /// stopped, and writes no report unless asked.
    pub fn serving(&self) -> bool {
        self.listen.is_some() || self.otlp.is_some()
    }

    /// Whether processes are selected by name or cgroup (they come and go: the run lasts
    /// until it is stopped).
    pub fn selecting(&self) -> bool {
        !self.comms.is_empty() || !self.cgroups.is_empty() || !self.exes.is_empty()
    }

    pub fn mode(&self) -> Result<Mode, String> {
        if self.follow && !self.sections.contains(&Section::Life) {
            return Err("--follow needs the life section (add life to --sections)".into());
        }
        if self.selecting() && !self.sections.contains(&Section::Life) {
            return Err(
                "--comm, --cgroup and --exe need the life section (add life to --sections)".into(),
            );
        }
        let mut files: Vec<&PathBuf> = self.output_file.iter().collect();
        for s in &self.sinks {
            if files.contains(&&s.path) {
                return Err(format!(
                    "{} is named by two outputs: give each its own file",
                    crate::render::term::printable(&s.path.to_string_lossy())
                ));
            }
            files.push(&s.path);
        }
        if self.tui {
            if self.output == Some(Format::Json) && self.output_file.is_none() {
                return Err(
                    "--tui shows the reports on the terminal: write JSON to a file (-o FILE or --sink json:FILE)"
                        .into(),
                );
            }
            if self.bench_floor {
                return Err("--tui has nothing to show with --bench-floor".into());
            }
            if !std::io::IsTerminal::is_terminal(&std::io::stdout()) {
                return Err("--tui needs a terminal, and standard output is not one".into());
            }
        }
        if let Some(spec) = self.trace_spec() {
            crate::model::strace::select(&spec.set)?;
            if !self.sections.contains(&Section::Syscalls) {
                return Err(
                    "--trace needs the syscalls section (add syscalls to --sections)".into(),
                );
            }
            if self.tui {
                return Err("--trace writes lines, and --tui holds the terminal: use one".into());
            }
            if self.bench_floor {
                return Err("--trace has nothing to stream with --bench-floor".into());
            }
            if self.serving()
                && self.output.is_none()
                && self.output_file.is_none()
                && self.sinks.is_empty()
            {
                return Err(
                    "--trace writes its lines where the reports go: with --listen or --otlp, ask for one (--output, -o FILE or --sink)"
                        .into(),
                );
            }
        } else if self.decode_fds > 0 {
            return Err(
                "-y names the descriptors of --trace's calls, which is not asked for".into(),
            );
        } else if self.stack {
            return Err(
                "--stack shows the stacks of --trace's calls, which is not asked for".into(),
            );
        } else if self.trace_buffer.is_some() {
            return Err(
                "--trace-buffer sizes the stream of --trace, which is not asked for".into(),
            );
        }
        let max = tracer_common::MAX_SELECTORS;
        if self.comms.len() > max || self.cgroups.len() > max || self.exes.len() > max {
            return Err(format!(
                "at most {max} --comm, {max} --cgroup and {max} --exe values are supported"
            ));
        }
        match (self.pids.is_empty(), self.command.is_empty()) {
            (false, false) => Err("give either --pid or a command after --, not both".into()),
            (true, true) if self.selecting() => Ok(Mode::Attach(Vec::new())),
            (true, true) => Err(
                "nothing to trace: give --pid PID, --comm NAME, --cgroup PATH, --exe PATH or -- CMD [ARGS...]"
                    .into(),
            ),
            (false, true) => {
                let mut pids = self.pids.clone();
                pids.sort_unstable();
                pids.dedup();
                if pids.len() > tracer_common::MAX_TARGETS as usize {
                    return Err(format!(
                        "at most {} --pid values are supported",
                        tracer_common::MAX_TARGETS
                    ));
                }
                Ok(Mode::Attach(pids))
            }
            (true, false) => Ok(Mode::Launch(self.command.clone())),
        }
    }
}

/// Parses the command line. On a usage error, prints one line and returns exit code 2;
/// `--help` and `--version` print as usual and return 0.
pub fn parse() -> Result<(Cli, Mode), ExitCode> {
    parse_from(std::env::args_os())
}

pub fn parse_from<I, T>(args: I) -> Result<(Cli, Mode), ExitCode>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {
            let _ = e.print();
            return Err(ExitCode::SUCCESS);
        }
        Err(e) => return Err(usage_error(&one_line(&e.to_string()))),
    };
    match cli.mode() {
        Ok(mode) => Ok((cli, mode)),
        Err(msg) => Err(usage_error(&msg)),
    }
}

fn usage_error(msg: &str) -> ExitCode {
    eprintln!("tracer: {msg} (see tracer --help)");
    ExitCode::from(2)
}

/// clap's first line, without its `error: ` prefix.
fn one_line(msg: &str) -> String {
    let first = msg
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("invalid arguments");
    first.strip_prefix("error: ").unwrap_or(first).to_string()
}

/// A process name as the kernel keeps it: 1 to 15 bytes, no NUL.
fn parse_comm(s: &str) -> Result<String, String> {
    if s.is_empty() || s.contains('\0') {
        return Err("a process name is 1 to 15 bytes, without NUL".into());
    }
    if s.len() > 15 {
        return Err(format!(
            "'{s}' is longer than 15 bytes; the kernel keeps the first 15 of a process's name"
        ));
    }
    Ok(s.to_string())
}

/// An `--otlp` URL (checked further by the OTLP sink's own parser, when built with it).
fn parse_otlp(s: &str) -> Result<String, String> {
    #[cfg(feature = "otlp")]
    crate::sink::otlp::parse_url(s)?;
    Ok(s.to_string())
}

/// A `service` label value: 1 to 128 printable characters.
fn parse_label(s: &str) -> Result<String, String> {
    if s.is_empty() || s.len() > 128 || s.chars().any(char::is_control) {
        return Err("a label is 1 to 128 printable characters".into());
    }
    Ok(s.to_string())
}

fn parse_pid(s: &str) -> Result<u32, String> {
    match s.parse::<u32>() {
        Ok(0) => Err("PID 0 is not a process".into()),
        Ok(p) if p > i32::MAX as u32 => Err(format!("{p} is not a valid PID")),
        Ok(p) => Ok(p),
        Err(_) => Err(format!("'{s}' is not a PID (a positive number)")),
    }
}

fn parse_secs(s: &str) -> Result<Duration, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 && v <= 1e9 => Ok(Duration::from_secs_f64(v)),
        _ => Err(format!("'{s}' is not a positive number of seconds")),
    }
}

/// A stall threshold: a duration ("100ms", "1.5s", "2s"), or "off" (zero: none).
fn parse_stall(s: &str) -> Result<Duration, String> {
    if s == "off" || s == "0" {
        return Ok(Duration::ZERO);
    }
    match humantime::parse_duration(s) {
        Ok(d) if d > Duration::ZERO && d <= Duration::from_secs(3600) => Ok(d),
        _ => Err(format!(
            "'{s}' is not a duration between 1ns and 1h (such as 100ms or 2s), or off"
        )),
    }
}

/// Shortest interval between live reports: each reads every counter of the kernel maps.
fn parse_errno(s: &str) -> Result<i32, String> {
    let s = s.trim();
    if let Ok(n) = s.parse::<i32>()
        && (1..4096).contains(&n)
    {
        return Ok(n);
    }
    crate::model::strace::decode::errno_by_name(&s.to_ascii_uppercase()).ok_or_else(|| {
        format!(
            "'{}' is not an errno name (ENOENT, EACCES, ...)",
            crate::render::term::printable(s)
        )
    })
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    if let Ok(d) = parse_secs(s) {
        return Ok(d);
    }
    match humantime::parse_duration(s) {
        Ok(d) if !d.is_zero() => Ok(d),
        _ => Err(format!(
            "'{}' is not a duration (2ms, 1.5s, 300us)",
            crate::render::term::printable(s)
        )),
    }
}

fn parse_ring_size(s: &str) -> Result<u32, String> {
    let (num, mult) = match s.strip_suffix(['K', 'k']) {
        Some(n) => (n, 1u64 << 10),
        None => match s.strip_suffix(['M', 'm']) {
            Some(n) => (n, 1 << 20),
            None => (s, 1),
        },
    };
    let bad = || {
        format!(
            "'{}' is not a ring size: a power of two from 4K to 1024M",
            crate::render::term::printable(s)
        )
    };
    let n = num.parse::<u64>().map_err(|_| bad())? * mult;
    if !n.is_power_of_two() || !(4096..=1 << 30).contains(&n) {
        return Err(bad());
    }
    Ok(n as u32)
}

pub const MIN_INTERVAL: Duration = Duration::from_millis(100);

fn parse_interval(s: &str) -> Result<Duration, String> {
    let d = parse_secs(s)?;
    if d < MIN_INTERVAL {
        return Err(format!(
            "'{s}' is too short: reports come at most every {} s",
            MIN_INTERVAL.as_secs_f64()
        ));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<(Cli, Mode), String> {
        let cli = Cli::try_parse_from(args).map_err(|e| one_line(&e.to_string()))?;
        let mode = cli.mode()?;
        Ok((cli, mode))
    }

    #[test]
    fn intervals_have_a_minimum() {
        let e = parse(&["tracer", "--interval", "1e-9", "--pid", "1"]).unwrap_err();
        assert!(
            e.contains("too short: reports come at most every 0.1 s"),
            "{e}"
        );
        assert!(parse(&["tracer", "--interval", "0.1", "--pid", "1"]).is_ok());
    }

    #[test]
    fn pids_are_repeatable_and_deduplicated() {
        let (_, mode) = parse(&["tracer", "-p", "9", "--pid", "3", "-p", "9"]).unwrap();
        assert!(matches!(mode, Mode::Attach(p) if p == vec![3, 9]));
    }

    #[test]
    fn command_after_double_dash() {
        let (cli, mode) = parse(&["tracer", "--duration", "2.5", "--", "ls", "-l"]).unwrap();
        assert_eq!(cli.duration, Some(Duration::from_millis(2500)));
        assert!(matches!(mode, Mode::Launch(c) if c == vec!["ls", "-l"]));
    }

    #[test]
    fn trace_options() {
        let (cli, _) = parse(&["tracer", "-p", "1", "--trace"]).unwrap();
        assert_eq!(cli.trace_spec().unwrap().set, "all");
        let (cli, _) = parse(&["tracer", "-p", "1", "--trace=openat,%network"]).unwrap();
        assert_eq!(cli.trace_spec().unwrap().set, "openat,%network");
        let (cli, _) = parse(&[
            "tracer",
            "-p",
            "1",
            "--failed",
            "--errno",
            "ENOENT,eacces,5",
        ])
        .unwrap();
        let spec = cli.trace_spec().unwrap();
        assert!(spec.failed);
        assert_eq!((spec.set.as_str(), spec.errnos), ("all", vec![2, 13, 5]));
        let (cli, _) = parse(&["tracer", "-p", "1", "--slower-than", "2ms"]).unwrap();
        assert_eq!(
            cli.trace_spec().unwrap().slower_than,
            Some(Duration::from_millis(2))
        );
        let (cli, _) = parse(&[
            "tracer",
            "-p",
            "1",
            "--slower-than",
            "0.5",
            "--trace-buffer",
            "64K",
        ])
        .unwrap();
        assert_eq!(cli.slower_than, Some(Duration::from_millis(500)));
        assert_eq!(cli.trace_buffer, Some(65536));
        let (cli, _) = parse(&["tracer", "-p", "1"]).unwrap();
        assert_eq!(cli.trace_spec(), None);
        assert_eq!(cli.decode_fds, 0);
        let (cli, _) = parse(&["tracer", "-p", "1", "--failed", "-yy"]).unwrap();
        assert_eq!(cli.decode_fds, 2);
        let (cli, _) = parse(&["tracer", "-p", "1", "--trace", "--decode-fds"]).unwrap();
        assert_eq!(cli.decode_fds, 1);
        assert!(
            parse(&["tracer", "-p", "1", "-y"])
                .unwrap_err()
                .contains("-y names the descriptors of --trace's calls")
        );
        let (cli, _) = parse(&["tracer", "-p", "1", "--failed", "--stack"]).unwrap();
        assert!(cli.trace_spec().unwrap().stack);
        assert!(
            parse(&["tracer", "-p", "1", "--stack"])
                .unwrap_err()
                .contains("--stack shows the stacks of --trace's calls")
        );
    }

    #[test]
    fn bad_input_is_one_line() {
        for (args, needle) in [
            (&["tracer", "--pid", "abc"][..], "not a PID"),
            (&["tracer", "--pid", "0"][..], "PID 0"),
            (&["tracer", "--pid", "-5"][..], "'-5' is not a PID"),
            (
                &["tracer", "--interval", "0", "-p", "1"][..],
                "positive number of seconds",
            ),
            (
                &["tracer", "--output", "xml", "-p", "1"][..],
                "invalid value 'xml'",
            ),
            (&["tracer", "-p", "1", "--", "ls"][..], "not both"),
            (&["tracer"][..], "nothing to trace"),
            (&["tracer", "ls"][..], "unexpected argument"),
            (
                &["tracer", "-p", "1", "-o", "r", "--sink", "json:r"][..],
                "r is named by two outputs",
            ),
            (
                &["tracer", "-p", "1", "--sink", "yaml:r"][..],
                "not a format",
            ),
            (
                &["tracer", "-p", "1", "--tui", "--output", "json"][..],
                "--tui shows the reports on the terminal",
            ),
            (
                &["tracer", "-p", "1", "--trace=nope"][..],
                "'nope' is not a syscall or a class",
            ),
            (&["tracer", "-p", "1", "--trace=%filez"][..], "not a class"),
            (
                &["tracer", "-p", "1", "--errno", "ENOPE"][..],
                "'ENOPE' is not an errno name",
            ),
            (
                &["tracer", "-p", "1", "--slower-than", "soon"][..],
                "'soon' is not a duration",
            ),
            (
                &["tracer", "-p", "1", "--trace", "--trace-buffer", "3000"][..],
                "not a ring size",
            ),
            (
                &["tracer", "-p", "1", "--trace-buffer", "8K"][..],
                "which is not asked for",
            ),
            (
                &["tracer", "-p", "1", "--trace", "--sections", "sched"][..],
                "--trace needs the syscalls section",
            ),
            (
                &["tracer", "-p", "1", "--trace", "--listen", "9000"][..],
                "--trace writes its lines where the reports go",
            ),
        ] {
            let err = parse(args).unwrap_err();
            assert!(err.contains(needle), "{args:?}: {err}");
            assert!(!err.contains('\n'), "{args:?}: {err}");
        }
    }
}
