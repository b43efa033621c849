//! strace mode (`--trace`): which calls to stream (strace's `-e trace=` spelling), and
//! each streamed call decoded into strace's line, or one JSON object. Pure: the kernel's
//! records come in as [`CallRecord`]s, lines go out as strings.
pub mod args;
pub mod classes;
pub mod decode;
pub mod fds;
pub mod stack;

use std::{collections::BTreeSet, time::Duration};

use serde::Serialize;
use tracer_common::stream::{
    CallRecord, DUR_UNKNOWN, ERRNO_BITS, NR_COMPAT, SELECT_BITS, StreamConfig,
};

use crate::render::term::printable;

/// What `--trace`, `--failed`, `--errno` and `--slower-than` asked for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TraceSpec {
    /// The set, in strace's spelling (`all`, `openat,%network`).
    pub set: String,
    pub failed: bool,
    pub errnos: Vec<i32>,
    pub slower_than: Option<Duration>,
    /// Each call's user stack (`--stack`).
    pub stack: bool,
}

/// The classes `--trace` knows, as strace spells them.
pub const CLASS_NAMES: &str = "%file, %network, %process, %memory, %signal, %desc, %ipc";

/// The syscall names a set selects: names and `%class`es, comma-separated, `all`; a
/// leading `!` selects every syscall but those.
pub fn select(set: &str) -> Result<BTreeSet<&'static str>, String> {
    let (negate, body) = match set.strip_prefix('!') {
        Some(rest) => (true, rest),
        None => (false, set),
    };
    let mut names = BTreeSet::new();
    for tok in body.split(',').map(str::trim) {
        if tok.is_empty() {
            return Err(format!("--trace={set}: an empty name in the set"));
        }
        if tok == "all" {
            names.extend(all_names());
        } else if let Some(class) = tok.strip_prefix('%') {
            let Some((_, members)) = classes::CLASSES.iter().find(|c| c.0 == class) else {
                return Err(format!(
                    "--trace: '{}' is not a class ({CLASS_NAMES})",
                    printable(tok)
                ));
            };
            names.extend(members.iter().copied().filter(|n| known(n)));
        } else {
            let Some(n) = all_names().find(|n| *n == tok) else {
                return Err(format!(
                    "--trace: '{}' is not a syscall or a class ({CLASS_NAMES})",
                    printable(tok)
                ));
            };
            names.insert(n);
        }
    }
    if negate {
        return Ok(all_names().filter(|n| !names.contains(n)).collect());
    }
    Ok(names)
}

/// Every syscall name of either ABI.
fn all_names() -> impl Iterator<Item = &'static str> {
    syscalls::Sysno::iter()
        .map(|s| s.name())
        .chain(syscalls::x86::Sysno::iter().map(|s| s.name()))
}

fn known(name: &str) -> bool {
    name.parse::<syscalls::Sysno>().is_ok() || name.parse::<syscalls::x86::Sysno>().is_ok()
}

/// The kernel side's configuration for a spec.
pub fn config(spec: &TraceSpec) -> Result<StreamConfig, String> {
    let mut c = StreamConfig {
        enabled: 1,
        failed_only: u32::from(spec.failed),
        errno_filter: u32::from(!spec.errnos.is_empty()),
        sampled_start: u32::from(
            (spec.failed || !spec.errnos.is_empty()) && spec.slower_than.is_none(),
        ),
        min_ns: spec.slower_than.map_or(0, |d| d.as_nanos() as u64),
        stack: u32::from(spec.stack),
        ..StreamConfig::default()
    };
    let half = SELECT_BITS / 2;
    for name in select(&spec.set)? {
        let ids = [
            (
                0,
                name.parse::<syscalls::Sysno>()
                    .ok()
                    .map(|s| s.id() as usize),
            ),
            (
                half,
                name.parse::<syscalls::x86::Sysno>()
                    .ok()
                    .map(|s| s.id() as usize),
            ),
        ];
        for (base, id) in ids {
            let Some(id) = id.filter(|&id| id < half) else {
                continue;
            };
            let bit = base + id;
            c.select[bit / 64] |= 1 << (bit % 64);
            c.paths[bit] = args::path_nibbles(name);
            c.addrs[bit] = args::addr_nibbles(name);
        }
    }
    for &e in &spec.errnos {
        let e = e as usize;
        if e > 0 && e < ERRNO_BITS {
            c.errnos[e / 64] |= 1 << (e % 64);
        }
    }
    Ok(c)
}

/// One streamed call, decoded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Call {
    /// `"call"`, for readers of the NDJSON stream.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// When it began: wall clock (ns since the epoch) and monotonic.
    pub time_ns: i128,
    pub mono_ns: u64,
    pub tid: u32,
    pub pid: u32,
    pub comm: String,
    pub syscall: String,
    pub abi: &'static str,
    pub nr: u32,
    /// The raw arguments, as many as the syscall has.
    pub args: Vec<u64>,
    /// The same as strace shows them (a path quoted, flags by name).
    pub decoded: Vec<String>,
    /// The captured paths, in order (lossy UTF-8), with whether each was cut.
    pub paths: Vec<PathArg>,
    /// `execve`'s argv as captured (its first entries, lossy UTF-8), and whether more
    /// followed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub argv: Option<ArgvArg>,
    /// The socket address captured (`connect`, `bind`, `sendto`, `accept*`,
    /// `recvfrom`, `getsockname`, `getpeername`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub addr: Option<AddrArg>,
    pub ret: i64,
    pub errno: Option<String>,
    pub error: Option<String>,
    /// None: not timed (`--failed`/`--errno` take the start only from calls the
    /// aggregate timed); the line then says `<unavailable>`, as strace does.
    pub duration_ns: Option<u64>,
    /// strace's rendering of the return value (`-1 ENOENT (No such file or directory)`).
    pub result: String,
    /// With `-y`: the descriptors named, in the arguments and the result.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fds: Vec<NamedFd>,
    /// With `--stack`: the user stack, innermost frame first (None: not asked, or not
    /// taken: then `stack_error` says why).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stack: Option<Vec<stack::Frame>>,
    /// The errno of a stack the kernel could not take (`EFAULT`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stack_error: Option<String>,
}

/// A descriptor `-y` named: which argument (None: the result), its number, and what it
/// was at decode time, as the line shows it between `<>` (escaped).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NamedFd {
    pub arg: Option<usize>,
    pub fd: i32,
    pub name: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PathArg {
    pub path: String,
    pub cut: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ArgvArg {
    /// Each entry captured; None for one that could not be read.
    pub entries: Vec<Option<PathArg>>,
    /// More entries followed those captured.
    pub more: bool,
}

/// A socket address: its family (`AF_INET`), the address and port of an IP one, the
/// path of a unix one (`@name` for an abstract one); the length the call had.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct AddrArg {
    pub family: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    pub len: u32,
}

/// A piece of the stream: a call, or calls that could not be sent at that point.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Item {
    Call(Box<Call>),
    Lost(u64),
}

impl Call {
    /// Decodes a kernel record; `wall_offset_ns` turns its monotonic time into wall time.
    /// (Without `-y`: the stream's reader calls [`from_record_named`](Self::from_record_named).)
    #[cfg(test)]
    pub fn from_record(r: &CallRecord, wall_offset_ns: i128) -> Call {
        Self::from_record_named(r, wall_offset_ns, None)
    }

    /// [`from_record`](Self::from_record), with its descriptors named by `fds` (`-y`):
    /// `3</etc/passwd>` in the arguments, and in the result of a call that returns one.
    pub fn from_record_named(
        r: &CallRecord,
        wall_offset_ns: i128,
        mut fds: Option<&mut dyn fds::FdNamer>,
    ) -> Call {
        let compat = r.nr & NR_COMPAT != 0;
        let nr = r.nr & !NR_COMPAT;
        let name = if compat {
            syscalls::x86::Sysno::new(nr as usize).map(|s| s.name())
        } else {
            syscalls::Sysno::new(nr as usize).map(|s| s.name())
        };
        let syscall = name.map_or_else(|| format!("syscall_{nr:#x}"), str::to_string);
        let (sig, ret_addr) = match name.and_then(args::signature) {
            Some((s, a)) => (Some(s), a),
            None => (None, false),
        };
        let n = sig.map_or_else(|| name.map_or(6, args::nargs), <[_]>::len);
        let raw: Vec<u64> = r.args.iter().copied().take(n).collect();
        let mut decoded = Vec::with_capacity(n);
        let mut paths = Vec::new();
        let mut next_path = 0;
        let mut named = Vec::new();
        let (mut argv, mut addr) = (None, None);
        // When the call ended (its start is its end when the start is not known).
        let end_ns = if r.dur_ns == DUR_UNKNOWN {
            r.start_ns
        } else {
            r.start_ns.saturating_add(r.dur_ns)
        };
        for (i, &v) in raw.iter().enumerate() {
            let kind = sig
                .and_then(|s| s.get(i))
                .copied()
                .unwrap_or(args::Arg::Hex);
            if let Some(shown) = captured(r, kind, v, &mut argv, &mut addr) {
                decoded.push(shown);
                continue;
            }
            if kind == args::Arg::Path {
                let shown = match r.path(next_path) {
                    _ if v == 0 => decode::ptr(0),
                    Some(Ok((bytes, cut))) => {
                        paths.push(PathArg {
                            path: String::from_utf8_lossy(bytes).into_owned(),
                            cut,
                        });
                        decode::quote(bytes, cut)
                    }
                    _ => decode::ptr(v),
                };
                next_path += 1;
                decoded.push(shown);
                continue;
            }
            if let Some(mut s) = args::show(kind, &raw, i) {
                // AT_FDCWD too: strace -y shows it `AT_FDCWD</cwd>`.
                let is_fd = matches!(kind, args::Arg::Fd | args::Arg::DirFd);
                // A descriptor a successful close freed is gone, or already another one.
                let freed = syscall == "close" && r.ret == 0;
                if is_fd
                    && !freed
                    && let Some(name) = fds
                        .as_deref_mut()
                        .and_then(|f| f.name(r.tgid, v as i32, end_ns))
                {
                    decorate(&mut s, &name);
                    named.push(NamedFd {
                        arg: Some(i),
                        fd: v as i32,
                        name,
                    });
                }
                decoded.push(s);
            }
        }
        if syscall == "clone" && !compat {
            decoded = decode::clone_args(&raw);
        }
        let mut result = decode::ret(r.ret, ret_addr);
        if r.ret >= 0
            && r.ret <= i32::MAX as i64
            && name.is_some_and(args::returns_fd)
            && let Some(name) = fds.and_then(|f| f.name(r.tgid, r.ret as i32, end_ns))
        {
            decorate(&mut result, &name);
            named.push(NamedFd {
                arg: None,
                fd: r.ret as i32,
                name,
            });
        }
        let failed = (-4095..0).contains(&r.ret);
        let (errno, error) = if failed {
            let (n, m) = decode::errno((-r.ret) as i32);
            (Some(n), Some(m))
        } else {
            (None, None)
        };
        let end = r.comm.iter().position(|&b| b == 0).unwrap_or(r.comm.len());
        Call {
            kind: "call",
            time_ns: r.start_ns as i128 + wall_offset_ns,
            mono_ns: r.start_ns,
            tid: r.tid,
            pid: r.tgid,
            comm: String::from_utf8_lossy(&r.comm[..end]).into_owned(),
            syscall,
            abi: if compat { "i386" } else { "x86_64" },
            nr,
            args: raw,
            decoded,
            paths,
            argv,
            addr,
            ret: r.ret,
            errno,
            error,
            duration_ns: (r.dur_ns != DUR_UNKNOWN).then_some(r.dur_ns),
            result,
            fds: named,
            stack: None,
            stack_error: None,
        }
    }

    /// `--stack`: the call's frames, or the errno the kernel gave for not taking them.
    pub fn set_stack(&mut self, frames: Result<Vec<stack::Frame>, i32>) {
        match frames {
            Ok(f) => self.stack = Some(f),
            Err(e) => self.stack_error = Some(decode::errno(e).0),
        }
    }

    /// The line strace would print with `-f -tt -T` (and the thread's name):
    /// `12:00:01.123456 [2201 node] openat(AT_FDCWD, "/x", O_RDONLY) = 3 <0.000012>`.
    #[cfg(test)]
    pub fn line(&self) -> String {
        let mut s = String::new();
        self.write_line(&mut s);
        s
    }

    /// The line appended to `out`, without a String of its own: a flood is
    /// hundreds of thousands of lines a second, and allocating was half of their cost.
    pub fn write_line(&self, out: &mut String) {
        use std::fmt::Write;
        write_clock(self.time_ns, out);
        let _ = write!(
            out,
            " [{} {}] {}(",
            self.tid,
            printable(&self.comm),
            self.syscall
        );
        for (i, a) in self.decoded.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            out.push_str(a);
        }
        let _ = write!(out, ") = {} <", self.result);
        match self.duration_ns {
            Some(ns) => {
                let _ = write!(out, "{}>", decode::duration(ns));
            }
            None => out.push_str("unavailable>"),
        }
        for f in self.stack.iter().flatten() {
            out.push('\n');
            f.write_line(out);
        }
        if let Some(e) = &self.stack_error {
            out.push('\n');
            let (_, message) = decode::errno(decode::errno_by_name(e).unwrap_or(0));
            stack::not_taken_line(e, &message, out);
        }
    }
}

/// An argument the kernel captured other than a path (`execve`'s argv, a socket address
/// and its length) as strace shows it, noting the capture in `argv`/`addr`; None for
/// other arguments. One the kernel could not read shows as its pointer.
fn captured(
    r: &CallRecord,
    kind: args::Arg,
    v: u64,
    argv: &mut Option<ArgvArg>,
    addr: &mut Option<AddrArg>,
) -> Option<String> {
    use args::Arg;
    if !matches!(kind, Arg::Argv | Arg::Addr | Arg::AddrLenPtr) {
        return None;
    }
    if v == 0 {
        return Some(decode::ptr(0));
    }
    Some(match kind {
        Arg::Argv => match r.argv() {
            Some(Ok((n, more))) => {
                let entries = (0..n).filter_map(|i| r.argv_entry(i));
                *argv = Some(ArgvArg {
                    entries: entries
                        .clone()
                        .map(|e| {
                            e.ok().map(|(b, cut)| PathArg {
                                path: String::from_utf8_lossy(b).into_owned(),
                                cut,
                            })
                        })
                        .collect(),
                    more,
                });
                decode::argv(entries, more)
            }
            _ => decode::ptr(v),
        },
        Arg::Addr => match r.addr().and_then(Result::ok) {
            Some((bytes, len)) => match decode::sockaddr(bytes) {
                Some(shown) => {
                    *addr = Some(addr_arg(bytes, len));
                    shown
                }
                None => decode::ptr(v),
            },
            None => decode::ptr(v),
        },
        _ => match r.addr().and_then(Result::ok) {
            Some((_, len)) => format!("[{len}]"),
            None => decode::ptr(v),
        },
    })
}

/// The JSON form of a socket address [`decode::sockaddr`] showed.
fn addr_arg(b: &[u8], len: u32) -> AddrArg {
    let fam = u16::from_ne_bytes([b[0], b[1]]);
    let mut a = AddrArg {
        family: decode::family(fam as u64),
        len,
        ..AddrArg::default()
    };
    let port = |b: &[u8]| b.get(2..4).map(|p| u16::from_be_bytes([p[0], p[1]]));
    match fam as i32 {
        libc::AF_INET => {
            if let Some(ip) = b.get(4..8) {
                a.address = Some(std::net::Ipv4Addr::new(ip[0], ip[1], ip[2], ip[3]).to_string());
                a.port = port(b);
            }
        }
        libc::AF_INET6 => {
            if let Some(ip) = b.get(8..24).and_then(|ip| <[u8; 16]>::try_from(ip).ok()) {
                a.address = Some(std::net::Ipv6Addr::from(ip).to_string());
                a.port = port(b);
            }
        }
        libc::AF_UNIX if b.len() > 2 => {
            let rest = &b[2..];
            a.path = Some(match rest.split_first() {
                Some((0, name)) => format!("@{}", String::from_utf8_lossy(name)),
                _ => String::from_utf8_lossy(rest.split(|&c| c == 0).next().unwrap_or(rest))
                    .into_owned(),
            });
        }
        _ => {}
    }
    a
}

/// `3` as `3<NAME>`.
fn decorate(shown: &mut String, name: &str) {
    shown.push('<');
    shown.push_str(name);
    shown.push('>');
}

/// The stream's line for calls lost at that point.
pub fn lost_line(n: u64) -> String {
    format!("... {n} calls lost ...")
}

/// Wall-clock ns as local `HH:MM:SS.uuuuuu`, appended to `out`. The local `HH:MM:SS` of the last second asked is kept:
/// a stream asks for the same second thousands of times.
fn write_clock(wall_ns: i128, out: &mut String) {
    use std::{cell::RefCell, fmt::Write};
    thread_local! {
        static LAST: RefCell<(libc::time_t, String)> = const { RefCell::new((0, String::new())) };
    }
    let secs = wall_ns.div_euclid(1_000_000_000) as libc::time_t;
    let micros = wall_ns.rem_euclid(1_000_000_000) / 1000;
    LAST.with_borrow_mut(|(last, hms)| {
        if *last != secs || hms.is_empty() {
            hms.clear();
            // SAFETY: localtime_r writes only the struct it is given.
            let mut tm: libc::tm = unsafe { std::mem::zeroed() };
            // SAFETY: both pointers are valid for the call.
            if unsafe { libc::localtime_r(&secs, &mut tm) }.is_null() {
                let _ = write!(hms, "{secs}");
            } else {
                let _ = write!(hms, "{:02}:{:02}:{:02}", tm.tm_hour, tm.tm_min, tm.tm_sec);
            }
            *last = secs;
        }
        let _ = write!(out, "{hms}.{micros:06}");
    });
}

/// The stream's totals, said at the end.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct StreamSummary {
    pub streamed: u64,
    pub lost_ring_full: u64,
    pub lost_pending_full: u64,
    /// Records that could not be decoded.
    pub undecodable: u64,
    /// Calls sent without their stack (`--stack`: the kernel could not take it).
    pub stacks_lost: u64,
}

impl StreamSummary {
    pub fn lost(&self) -> u64 {
        self.lost_ring_full + self.lost_pending_full
    }

    pub fn line(&self) -> String {
        format!(
            "tracer: {} calls streamed, {} lost (ring buffer full: {}, call table full: {}){}{}",
            self.streamed,
            self.lost(),
            self.lost_ring_full,
            self.lost_pending_full,
            if self.undecodable > 0 {
                format!(", {} undecodable records", self.undecodable)
            } else {
                String::new()
            },
            if self.stacks_lost > 0 {
                format!(", {} without their stack", self.stacks_lost)
            } else {
                String::new()
            }
        )
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "type": "trace_summary",
            "streamed": self.streamed,
            "lost": self.lost(),
            "lost_by_cause": {
                "ring_full": self.lost_ring_full,
                "pending_full": self.lost_pending_full,
            },
            "undecodable": self.undecodable,
            "stacks_lost": self.stacks_lost,
        })
    }
}

/// An item as one NDJSON line.
pub fn json_line(item: &Item) -> String {
    match item {
        Item::Call(c) => crate::render::json::to_string(c),
        Item::Lost(n) => serde_json::json!({"type": "lost", "calls": n}).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracer_common::stream::{MAX_PATHS, PATH_BUF};

    fn record(nr: u32, args: [u64; 6], paths: &[&[u8]], ret: i64) -> CallRecord {
        let mut r = CallRecord {
            nr,
            tid: 2201,
            tgid: 2200,
            nbufs: paths.len() as u8,
            kinds: [0; MAX_PATHS],
            _pad: 0,
            start_ns: 5_000,
            dur_ns: 12_345,
            ret,
            args,
            lost_before: 0,
            comm: *b"node\0\0\0\0\0\0\0\0\0\0\0\0",
            buf_len: [0; MAX_PATHS],
            stack_len: 0,
            _pad_stack: 0,
            bufs: [[0; PATH_BUF]; MAX_PATHS],
        };
        for (i, p) in paths.iter().enumerate() {
            r.bufs[i][..p.len()].copy_from_slice(p);
            r.buf_len[i] = p.len() as i32 + 1;
        }
        r
    }

    fn line_without_time(c: &Call) -> String {
        c.line().split_once(' ').unwrap().1.to_string()
    }

    #[test]
    fn openat_as_strace_prints_it() {
        let flags = (libc::O_RDONLY | libc::O_CLOEXEC) as u64;
        let r = record(
            257,
            [-100i64 as u64, 0x1000, flags, 0, 0, 0],
            &[b"/etc/app.json"],
            -2,
        );
        let c = Call::from_record(&r, 0);
        assert_eq!(
            line_without_time(&c),
            "[2201 node] openat(AT_FDCWD, \"/etc/app.json\", O_RDONLY|O_CLOEXEC) = -1 ENOENT (No such file or directory) <0.000012>"
        );
        assert_eq!(c.errno.as_deref(), Some("ENOENT"));
        assert_eq!(c.args, vec![-100i64 as u64, 0x1000, flags, 0]);
    }

    #[test]
    fn rename_with_two_paths_and_a_cut_one() {
        let long = vec![b'a'; 257];
        let r = record(82, [0x10, 0x20, 0, 0, 0, 0], &[b"/tmp/a", &long], 0);
        let c = Call::from_record(&r, 0);
        let shown = format!("\"{}\"...", "a".repeat(256));
        assert_eq!(
            line_without_time(&c),
            format!("[2201 node] rename(\"/tmp/a\", {shown}) = 0 <0.000012>")
        );
        assert!(c.paths[1].cut && !c.paths[0].cut);
    }

    #[test]
    fn unknown_and_undecoded_calls_show_raw_arguments() {
        let r = record(110, [0; 6], &[], 2200); // getppid
        assert_eq!(
            line_without_time(&Call::from_record(&r, 0)),
            "[2201 node] getppid() = 2200 <0.000012>"
        );
        let r = record(9, [0, 8192, 3, 0x22, u64::MAX, 0], &[], 0x7f00_0000_0000);
        assert_eq!(
            line_without_time(&Call::from_record(&r, 0)),
            "[2201 node] mmap(NULL, 8192, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) = 0x7f0000000000 <0.000012>"
        );
        // A path that could not be read shows its pointer.
        let mut r = record(2, [0xdead, 0, 0, 0, 0, 0], &[b""], -14);
        r.buf_len[0] = -14;
        assert!(
            line_without_time(&Call::from_record(&r, 0))
                .starts_with("[2201 node] open(0xdead, O_RDONLY) = -1 EFAULT")
        );
    }

    #[test]
    fn any_record_decodes_without_panic() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for i in 0..20_000u64 {
            let mut r = record(0, [0; 6], &[], 0);
            r.nr = match i % 3 {
                0 => (next() % 512) as u32,
                1 => NR_COMPAT | (next() % 512) as u32,
                _ => next() as u32,
            };
            r.args = [next(), next(), next(), next(), next(), next()];
            r.ret = next() as i64 % 5000;
            r.nbufs = (next() % 3) as u8;
            r.kinds = [(next() % 4) as u8, (next() % 4) as u8];
            r.buf_len = [next() as i32, next() as i32];
            for b in r.bufs.iter_mut().flatten().step_by(7) {
                *b = next() as u8;
            }
            for b in r.comm.iter_mut() {
                *b = next() as u8;
            }
            let c = Call::from_record(&r, next() as i64 as i128);
            let line = c.line();
            assert!(!line.chars().any(|ch| ch.is_control()), "{line:?}");
            assert!(
                serde_json::from_str::<serde_json::Value>(&json_line(&Item::Call(Box::new(c))))
                    .is_ok()
            );
        }
    }

    /// Names from a fixed table, for the formatting without /proc.
    struct Names(Vec<(i32, &'static str)>);

    impl fds::FdNamer for Names {
        fn name(&mut self, tgid: u32, fd: i32, after_ns: u64) -> Option<String> {
            assert_eq!((tgid, after_ns), (2200, 5_000 + 12_345));
            self.0.iter().find(|n| n.0 == fd).map(|n| n.1.to_string())
        }
    }

    #[test]
    fn descriptors_named_as_strace_y_shows_them() {
        let mut names = Names(vec![
            (3, "/etc/passwd"),
            (4, "pipe:[6789]"),
            (5, "TCP:[127.0.0.1:41234->127.0.0.1:8080]"),
            (9, "/tmp"),
            (-100, "/root"),
        ]);
        let at_fdcwd = -100i64 as u64;
        // (nr, args, path, ret, the line without its time, thread and duration.)
        type Case<'a> = (u32, [u64; 6], &'a [&'a [u8]], i64, &'a str);
        let cases: &[Case] = &[
            (
                0,
                [3, 0x1000, 64, 0, 0, 0],
                &[],
                12,
                "read(3</etc/passwd>, 0x1000, 64) = 12",
            ),
            (
                1,
                [4, 0x1000, 1, 0, 0, 0],
                &[],
                1,
                "write(4<pipe:[6789]>, 0x1000, 1) = 1",
            ),
            // A returned descriptor; AT_FDCWD named as the directory it is, as strace
            // does, and a directory descriptor.
            (
                257,
                [at_fdcwd, 0x1, 0, 0, 0, 0],
                &[b"/etc/passwd"],
                3,
                "openat(AT_FDCWD</root>, \"/etc/passwd\", O_RDONLY) = 3</etc/passwd>",
            ),
            (
                257,
                [9, 0x1, 0, 0, 0, 0],
                &[b"passwd"],
                -2,
                "openat(9</tmp>, \"passwd\", O_RDONLY) = -1 ENOENT (No such file or directory)",
            ),
            (
                43,
                [5, 0, 0, 0, 0, 0],
                &[],
                3,
                "accept(5<TCP:[127.0.0.1:41234->127.0.0.1:8080]>, NULL, NULL) = 3</etc/passwd>",
            ),
            // Gone: the bare number. A successful close's descriptor is gone (or reused).
            (0, [7, 0x1000, 1, 0, 0, 0], &[], 1, "read(7, 0x1000, 1) = 1"),
            (3, [3, 0, 0, 0, 0, 0], &[], 0, "close(3) = 0"),
            (
                3,
                [3, 0, 0, 0, 0, 0],
                &[],
                -9,
                "close(3</etc/passwd>) = -1 EBADF (Bad file descriptor)",
            ),
            // mmap's -1 and a non-descriptor result are left alone.
            (
                9,
                [0, 8192, 3, 0x22, u64::MAX, 0],
                &[],
                0x7f00_0000_0000,
                "mmap(NULL, 8192, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) = 0x7f0000000000",
            ),
        ];
        for &(nr, args, paths, ret, want) in cases {
            let c = Call::from_record_named(&record(nr, args, paths, ret), 0, Some(&mut names));
            assert_eq!(
                line_without_time(&c),
                format!("[2201 node] {want} <0.000012>")
            );
        }
        // JSON: the decoded arguments and the result carry the same text.
        let c = Call::from_record_named(
            &record(0, [3, 0x1000, 64, 0, 0, 0], &[], 12),
            0,
            Some(&mut names),
        );
        let v: serde_json::Value =
            serde_json::from_str(&json_line(&Item::Call(Box::new(c)))).unwrap();
        assert_eq!(v["decoded"][0], "3</etc/passwd>");
        assert_eq!(v["args"][0], 3);
        assert_eq!(
            v["fds"],
            serde_json::json!([{"arg": 0, "fd": 3, "name": "/etc/passwd"}])
        );
        let c =
            Call::from_record_named(&record(43, [5, 0, 0, 0, 0, 0], &[], 3), 0, Some(&mut names));
        assert_eq!(
            c.fds[1],
            NamedFd {
                arg: None,
                fd: 3,
                name: "/etc/passwd".into()
            }
        );
        assert_eq!(c.result, "3</etc/passwd>");
        // Without -y, no `fds` key.
        let c = Call::from_record(&record(0, [3, 0x1000, 64, 0, 0, 0], &[], 12), 0);
        assert!(!json_line(&Item::Call(Box::new(c))).contains("\"fds\""));
    }

    #[test]
    fn comm_is_escaped() {
        let mut r = record(110, [0; 6], &[], 1);
        r.comm = *b"x\x1b[2J\0\0\0\0\0\0\0\0\0\0\0";
        assert!(Call::from_record(&r, 0).line().contains("[2201 x\\33[2J]"));
    }

    #[test]
    fn sets_in_strace_spelling() {
        let s = select("openat,%network").unwrap();
        assert!(s.contains("openat") && s.contains("connect") && s.contains("sendto"));
        assert!(!s.contains("read"));
        let f = select("%file").unwrap();
        for n in [
            "open",
            "openat",
            "stat",
            "newfstatat",
            "execve",
            "rename",
            "chdir",
        ] {
            assert!(f.contains(n), "{n} in %file");
        }
        assert!(!f.contains("read") && !f.contains("close"));
        assert!(select("%process").unwrap().contains("clone"));
        assert!(select("%memory").unwrap().contains("mmap"));
        assert!(select("%signal").unwrap().contains("kill"));
        assert!(select("%desc").unwrap().contains("read"));
        assert!(!select("!openat").unwrap().contains("openat"));
        assert!(select("!openat").unwrap().contains("read"));
        assert!(
            select("nope")
                .unwrap_err()
                .contains("'nope' is not a syscall")
        );
        assert!(select("%nope").unwrap_err().contains("not a class"));
        assert!(select("openat,,read").is_err());
    }

    #[test]
    fn a_stack_follows_its_call_line_and_is_in_its_object() {
        let mut c = Call::from_record(&record(110, [0; 6], &[], 7), 0);
        c.set_stack(Ok(vec![
            stack::Frame::named(0x7f00, "getppid", 7, "/lib/libc.so.6"),
            stack::Frame::unknown(0x5000, "not mapped"),
        ]));
        assert_eq!(
            line_without_time(&c),
            "[2201 node] getppid() = 7 <0.000012>\n > /lib/libc.so.6(getppid+0x7) [0x7f00]\n > ? [0x5000] (not mapped)"
        );
        let v: serde_json::Value =
            serde_json::from_str(&json_line(&Item::Call(Box::new(c)))).unwrap();
        assert_eq!(v["stack"][0]["symbol"], "getppid");
        assert_eq!(v["stack"][1]["unknown"], "not mapped");
        assert!(v.get("stack_error").is_none());
        let mut c = Call::from_record(&record(110, [0; 6], &[], 7), 0);
        c.set_stack(Err(14));
        assert!(
            c.line()
                .ends_with("\n > stack not taken: EFAULT (Bad address)")
        );
        let v: serde_json::Value =
            serde_json::from_str(&json_line(&Item::Call(Box::new(c)))).unwrap();
        assert_eq!(v["stack_error"], "EFAULT");
        assert!(v.get("stack").is_none());
        // Without --stack, neither.
        let c = Call::from_record(&record(110, [0; 6], &[], 7), 0);
        assert!(!json_line(&Item::Call(Box::new(c))).contains("stack"));
    }

    #[test]
    fn config_selects_numbers_and_paths() {
        let spec = TraceSpec {
            set: "openat,rename".into(),
            failed: true,
            errnos: vec![2],
            slower_than: Some(Duration::from_millis(2)),
            stack: true,
        };
        let c = config(&spec).unwrap();
        assert_eq!(c.stack, 1);
        assert_eq!(c.select[0] & (1 << 2), 0, "open not selected");
        assert_ne!(c.select[257 / 64] & (1 << (257 % 64)), 0);
        assert_eq!(c.paths[257], 2);
        assert_eq!(c.paths[82], 1 | 2 << 4);
        // i386 rename is 38.
        assert_ne!(c.select[(512 + 38) / 64] & (1 << ((512 + 38) % 64)), 0);
        assert_eq!((c.failed_only, c.errno_filter, c.min_ns), (1, 1, 2_000_000));
        assert_eq!(c.errnos[0], 1 << 2);
    }

    #[test]
    fn json_has_raw_and_decoded_arguments() {
        let r = record(83, [0x10, 0o755, 0, 0, 0, 0], &[b"/tmp/d"], -17);
        let item = Item::Call(Box::new(Call::from_record(&r, 1_000)));
        let v: serde_json::Value = serde_json::from_str(&json_line(&item)).unwrap();
        assert_eq!(v["type"], "call");
        assert_eq!(v["syscall"], "mkdir");
        assert_eq!(v["args"], serde_json::json!([16, 493]));
        assert_eq!(v["decoded"], serde_json::json!(["\"/tmp/d\"", "0755"]));
        assert_eq!(v["errno"], "EEXIST");
        assert_eq!(v["time_ns"], 6_000);
        assert_eq!(json_line(&Item::Lost(3)), r#"{"calls":3,"type":"lost"}"#);
    }
}
