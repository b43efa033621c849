//! Discrete process-life events: decoded records ([`RawEvent`]) and their report form
//! ([`ProcessEvent`]).
use serde::Serialize;
use tracer_common::event::{self, Header};

/// A decoded ring-buffer record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RawEvent {
    pub header: Header,
    pub data: EventData,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventData {
    Fork(event::Fork),
    Exec(event::Exec),
    Exit(event::Exit),
    Signal(event::Signal),
    OomKill(event::OomKill),
}

/// A process-life event as reported. `t_s` is seconds since tracing started.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ProcessEvent {
    /// `pid`/`tid` created `child_tid`: a thread (`thread`) or a child process.
    Fork {
        t_s: f64,
        pid: u32,
        tid: u32,
        child_pid: u32,
        child_tid: u32,
        thread: bool,
        followed: bool,
    },
    /// `pid` exec'd `comm` (from thread `old_tid`).
    Exec {
        t_s: f64,
        pid: u32,
        tid: u32,
        old_tid: u32,
        comm: String,
    },
    /// Thread `tid` of `pid` ended; `process` when it was the last one (the process exited).
    Exit {
        t_s: f64,
        pid: u32,
        tid: u32,
        process: bool,
        exit_code: Option<i32>,
        signal: Option<String>,
        core_dumped: bool,
    },
    /// `signal` was sent to `pid` (thread `tid`) by process `sender_pid`.
    Signal {
        t_s: f64,
        pid: u32,
        tid: u32,
        signal: String,
        sender_pid: u32,
        result: &'static str,
    },
    /// The OOM killer chose `pid` (any process on the machine; `traced` if it is traced).
    OomKill {
        t_s: f64,
        pid: u32,
        tid: u32,
        comm: String,
        traced: bool,
    },
}

/// Counts of life events in a window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct LifeCounts {
    pub threads_created: u64,
    pub threads_ended: u64,
    pub children_forked: u64,
    pub execs: u64,
    pub process_exits: u64,
    pub signals: u64,
}

pub fn signal_name(sig: i32) -> String {
    match nix::sys::signal::Signal::try_from(sig) {
        Ok(s) => s.as_str().to_string(),
        Err(_) if (34..=64).contains(&sig) => format!("SIGRT{}", sig - 34),
        Err(_) => format!("SIG{sig}"),
    }
}

/// The kernel's `enum trace_signal_result`.
fn signal_result(r: u32) -> &'static str {
    match r {
        0 => "delivered",
        1 => "ignored",
        2 => "already_pending",
        3 => "overflow_fail",
        4 => "lose_info",
        _ => "unknown",
    }
}

fn comm(bytes: &[u8; 16]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

impl RawEvent {
    /// False for events about untraced processes (OOM kills elsewhere on the machine):
    /// those are reported in `oom_kills` only, not in the traced processes' event list.
    pub fn is_about_a_target(&self) -> bool {
        self.header.slot != event::UNTRACED_SLOT
    }

    /// The report form; `t0_ns` is the monotonic time tracing started.
    pub fn to_report(self, t0_ns: u64) -> ProcessEvent {
        let h = &self.header;
        let t_s = h.ts_ns.saturating_sub(t0_ns) as f64 / 1e9;
        let (pid, tid) = (h.tgid, h.tid);
        match self.data {
            EventData::Fork(f) => ProcessEvent::Fork {
                t_s,
                pid,
                tid,
                child_pid: f.child_tgid,
                child_tid: f.child_tid,
                thread: f.child_tgid == h.tgid,
                followed: f.followed != 0,
            },
            EventData::Exec(e) => ProcessEvent::Exec {
                t_s,
                pid,
                tid,
                old_tid: e.old_tid,
                comm: comm(&e.comm),
            },
            EventData::Exit(e) => {
                let sig = (e.exit_code & 0x7f) as i32;
                ProcessEvent::Exit {
                    t_s,
                    pid,
                    tid,
                    process: e.group_dead != 0,
                    exit_code: (sig == 0).then_some(((e.exit_code >> 8) & 0xff) as i32),
                    signal: (sig != 0).then(|| signal_name(sig)),
                    core_dumped: e.exit_code & 0x80 != 0,
                }
            }
            EventData::Signal(s) => ProcessEvent::Signal {
                t_s,
                pid,
                tid,
                signal: signal_name(s.sig as i32),
                sender_pid: s.sender_tgid,
                result: signal_result(s.result),
            },
            EventData::OomKill(k) => ProcessEvent::OomKill {
                t_s,
                pid,
                tid,
                comm: comm(&k.comm),
                traced: k.traced != 0,
            },
        }
    }
}

impl LifeCounts {
    pub fn count(events: &[RawEvent]) -> Self {
        let mut c = LifeCounts::default();
        for e in events {
            match e.data {
                EventData::Fork(f) if f.child_tgid == e.header.tgid => c.threads_created += 1,
                EventData::Fork(_) => c.children_forked += 1,
                EventData::Exec(_) => c.execs += 1,
                EventData::Exit(x) => {
                    c.threads_ended += 1;
                    c.process_exits += u64::from(x.group_dead != 0);
                }
                EventData::Signal(_) => c.signals += 1,
                // Reported in `oom_kills` (the memory section), not a life event.
                EventData::OomKill(_) => {}
            }
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracer_common::event::Kind;

    fn raw(kind: Kind, tid: u32, tgid: u32, data: EventData) -> RawEvent {
        RawEvent {
            header: Header {
                kind: kind as u32,
                slot: 0,
                ts_ns: 1_500_000_000,
                tid,
                tgid,
            },
            data,
        }
    }

    #[test]
    fn exit_status_is_decoded() {
        let code3 = raw(
            Kind::Exit,
            9,
            9,
            EventData::Exit(event::Exit {
                exit_code: 3 << 8,
                group_dead: 1,
            }),
        );
        match code3.to_report(500_000_000) {
            ProcessEvent::Exit {
                t_s,
                exit_code,
                signal,
                process,
                ..
            } => {
                assert_eq!(
                    (t_s, exit_code, signal, process),
                    (1.0, Some(3), None, true)
                );
            }
            e => panic!("{e:?}"),
        }
        let killed = raw(
            Kind::Exit,
            9,
            9,
            EventData::Exit(event::Exit {
                exit_code: 9,
                group_dead: 1,
            }),
        );
        match killed.to_report(0) {
            ProcessEvent::Exit {
                exit_code,
                signal,
                core_dumped,
                ..
            } => {
                assert_eq!(
                    (exit_code, signal.as_deref(), core_dumped),
                    (None, Some("SIGKILL"), false)
                );
            }
            e => panic!("{e:?}"),
        }
    }

    #[test]
    fn forks_are_threads_or_children() {
        let thread = raw(
            Kind::Fork,
            5,
            5,
            EventData::Fork(event::Fork {
                child_tid: 6,
                child_tgid: 5,
                followed: 0,
                _pad: 0,
            }),
        );
        let child = raw(
            Kind::Fork,
            5,
            5,
            EventData::Fork(event::Fork {
                child_tid: 7,
                child_tgid: 7,
                followed: 1,
                _pad: 0,
            }),
        );
        let exit = raw(
            Kind::Exit,
            6,
            5,
            EventData::Exit(event::Exit {
                exit_code: 0,
                group_dead: 0,
            }),
        );
        let c = LifeCounts::count(&[thread, child, exit]);
        assert_eq!(
            (
                c.threads_created,
                c.children_forked,
                c.threads_ended,
                c.process_exits
            ),
            (1, 1, 1, 0)
        );
        let json = serde_json::to_value(child.to_report(0)).unwrap();
        assert_eq!(json["type"], "fork");
        assert_eq!(json["thread"], false);
        assert_eq!(json["followed"], true);
    }

    #[test]
    fn signal_names() {
        assert_eq!(signal_name(15), "SIGTERM");
        assert_eq!(signal_name(35), "SIGRT1");
    }
}
