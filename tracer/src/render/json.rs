//! JSON output: one object per report, one line each (NDJSON). The schema is documented in
//! docs/json-schema.md, with its version ([`crate::model::SCHEMA_VERSION`]) and changelog.
use std::io::Write;

use serde::{Serialize, Serializer};

use crate::model::{Report, WallClock, memory::FdWarning};

pub fn write(out: &mut dyn Write, report: &Report) -> std::io::Result<()> {
    to_writer(&mut *out, report)?;
    out.write_all(b"\n")
}

/// `value` as compact JSON, as `serde_json` writes it but for DEL and the C1 controls
/// (U+007F to U+009F), which it leaves raw and some terminals obey: escaped as `\u00XX`,
/// like the C0 ones. A process's name or a path, another user's input, is in the objects.
pub fn to_writer<W: Write, T: Serialize + ?Sized>(out: W, value: &T) -> serde_json::Result<()> {
    let mut ser = serde_json::Serializer::with_formatter(out, NoControls);
    value.serialize(&mut ser)
}

/// [`to_writer`] into a String.
pub fn to_string<T: Serialize + ?Sized>(value: &T) -> String {
    let mut out = Vec::new();
    if to_writer(&mut out, value).is_err() {
        return String::new();
    }
    // serde_json writes UTF-8; the escapes are ASCII.
    String::from_utf8(out).unwrap_or_default()
}

/// serde_json's compact formatter, escaping DEL and C1 too (see [`to_writer`]).
struct NoControls;

impl serde_json::ser::Formatter for NoControls {
    fn write_string_fragment<W: ?Sized + Write>(
        &mut self,
        w: &mut W,
        fragment: &str,
    ) -> std::io::Result<()> {
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            if ('\u{7f}'..='\u{9f}').contains(&c) {
                w.write_all(&fragment.as_bytes()[start..i])?;
                write!(w, "\\u{:04x}", c as u32)?;
                start = i + c.len_utf8();
            }
        }
        w.write_all(&fragment.as_bytes()[start..])
    }
}

/// A descriptor warning is its words (see `render`'s `Display`).
impl Serialize for FdWarning {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// RFC 3339 in UTC, to the microsecond: `2026-12-01T02:30:00.123456Z`.
impl Serialize for WallClock {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&humantime::format_rfc3339_micros(self.0))
    }
}

#[cfg(test)]
mod tests {
    use crate::model::{ProcessInfo, Report, ReportKind, Sample, SyscallCounts, Window};
    use tracer_common::hist;

    #[test]
    fn del_and_c1_controls_are_escaped_like_c0() {
        let v = serde_json::json!({"comm": "a\u{7f}b\u{9b}[2J\u{1b}c\u{a0}é"});
        let s = super::to_string(&v);
        assert_eq!(s, "{\"comm\":\"a\\u007fb\\u009b[2J\\u001bc\u{a0}é\"}");
        assert!(!s.chars().any(|c| c.is_control()));
        let back: serde_json::Value = serde_json::from_str(&s).unwrap();
        assert_eq!(back, v);
    }

    #[test]
    fn final_object_has_the_documented_fields() {
        let mut s = Sample::default();
        let mut c = SyscallCounts {
            calls: 4,
            errors: 4,
            timed: 4,
            total_ns: 4000,
            max_ns: 1500,
            ..Default::default()
        };
        c.hist[hist::bucket(1000)] = 4;
        c.errnos.insert(2, 4);
        s.syscalls.insert((0, 257), c);
        let targets = [ProcessInfo {
            pid: 42,
            comm: "w".into(),
        }];
        let r = Report::build(
            &crate::model::window(ReportKind::Final, &s, 2.0),
            &crate::model::ctx(&targets),
        );
        let mut buf = Vec::new();
        super::write(&mut buf, &r).unwrap();
        assert_eq!(buf.iter().filter(|&&b| b == b'\n').count(), 1);
        let v: serde_json::Value = serde_json::from_slice(&buf).unwrap();
        assert_eq!(v["type"], "final");
        assert_eq!(v["pids"], serde_json::json!([42]));
        assert_eq!(v["duration_s"], 2.0);
        assert_eq!(v["lost_events"], 0);
        let row = &v["syscalls"][0];
        assert_eq!(row["name"], "openat");
        assert_eq!(row["nr"], 257);
        assert_eq!(row["abi"], "x86_64");
        assert_eq!(row["calls"], 4);
        assert_eq!(row["errors"], 4);
        assert_eq!(row["errnos"], serde_json::json!({"ENOENT": 4}));
        assert_eq!(row["total_ns"], 4000);
        assert_eq!(row["avg_ns"], 1000);
        assert_eq!(row["max_ns"], 1500);
        assert_eq!(row["max_is_bound"], false);
        // 1000 ns lies in the bucket [896, 1024): percentiles come from inside it.
        let b = hist::bucket(1000);
        for p in ["p50_ns", "p99_ns"] {
            let v = row[p].as_u64().unwrap();
            assert!(
                hist::lower_bound(b) <= v && v < hist::upper_bound(b),
                "{p} = {v}"
            );
        }
        assert_eq!(row["calls_per_s"], 2.0);
        assert_eq!(v["processes"][0]["pid"], 42);
        assert!(v.get("command").is_none());
    }

    #[test]
    fn objects_carry_their_version_and_bounds() {
        let targets = [ProcessInfo {
            pid: 42,
            comm: "w".into(),
        }];
        let mut ctx = crate::model::ctx(&targets);
        // Monotonic 1 s is 2026-12-01T02:30:00.123456789Z.
        ctx.t0_ns = 1_000_000_000;
        ctx.wall_offset_ns = 1_796_092_200_123_456_789 - 1_000_000_000;
        let s = Sample::default();
        let w = Window {
            kind: ReportKind::Interval,
            start_ns: 2_500_000_000,
            end_ns: 3_000_000_007,
            counts: &s,
            events: &crate::model::events::EventLog::default(),
            memory: None,
            command: None,
        };
        let mut buf = Vec::new();
        super::write(&mut buf, &Report::build(&w, &ctx)).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&buf).unwrap();
        assert_eq!(v["schema_version"], 2);
        assert_eq!(v["type"], "interval");
        // Microseconds, cut rather than rounded, so that a bound is the same string in the
        // two windows it separates.
        assert_eq!(v["start"], "2026-12-01T02:30:01.623456Z");
        assert_eq!(v["end"], "2026-12-01T02:30:02.123456Z");
        assert_eq!(v["start_mono_ns"], 2_500_000_000u64);
        assert_eq!(v["end_mono_ns"], 3_000_000_007u64);
        assert_eq!(v["duration_s"], 0.500000007);
        // The keys come first, in this order.
        let text = String::from_utf8(buf).unwrap();
        assert!(
            text.starts_with(
                r#"{"schema_version":2,"type":"interval","start":"2026-12-01T02:30:01.623456Z","end":"#
            ),
            "{text}"
        );
    }

    /// Every key a report can carry is in docs/json-schema.md, every top-level key has a
    /// row in its table, and every row of a table with a scope column says which scope.
    #[test]
    fn every_field_is_documented_with_its_scope() {
        use crate::model::{
            CommandExit,
            events::ProcessEvent,
            memory::{CgroupMem, LimitEta, MemSample, OomReport, ProcMemory},
            sched::{SchedCounts, ThreadCounts},
        };
        let doc = include_str!("../../../docs/json-schema.md");

        // The scope cell of every row of a table whose header has one.
        const SCOPES: [&str; 5] = [
            "interval",
            "instant",
            "cumulative",
            "constant",
            "(per field)",
        ];
        let mut scoped_rows = 0;
        let mut top_level_rows = Vec::new();
        let mut section = "";
        let mut scope_col = None;
        for line in doc.lines() {
            if line.starts_with('#') {
                section = line;
                scope_col = None;
            }
            let cells: Vec<&str> = line
                .split(" | ")
                .map(|c| c.trim_matches(['|', ' ']))
                .collect();
            if line.starts_with("| field |") {
                scope_col = cells.iter().position(|c| *c == "scope");
            } else if line.starts_with("| `")
                && let Some(i) = scope_col
            {
                assert!(SCOPES.contains(&cells[i]), "no scope in: {line}");
                scoped_rows += 1;
                if section == "## Top level" {
                    top_level_rows.push(cells[0]);
                }
            }
        }
        assert!(scoped_rows > 60, "{scoped_rows} rows with a scope");

        // A report with every optional part.
        let targets = [ProcessInfo {
            pid: 42,
            comm: "w".into(),
        }];
        let mut ctx = crate::model::ctx(&targets);
        ctx.threads = true;
        let mut s = Sample::default();
        s.syscalls.insert((0, 257), SyscallCounts::default());
        s.sched = Some([(0, SchedCounts::default())].into());
        s.threads.insert(
            43,
            ThreadCounts {
                slot: 0,
                pid: 42,
                comm: "w".into(),
                alive: true,
                counts: SchedCounts::default(),
                pool_addr: 0,
                cpu_without_syscalls_ns: 0,
            },
        );
        let mut mem = MemSample {
            procs: vec![ProcMemory::default()],
            ..Default::default()
        };
        let limits = &mut mem.procs[0].memory.limits;
        limits.cgroup = Some(CgroupMem::default());
        limits.eta = Some(LimitEta {
            limit: "cgroup",
            limit_bytes: 1,
            used_bytes: 0,
            eta_s: 1.0,
            rate_bytes_per_s: 1.0,
        });
        let w = Window {
            kind: ReportKind::Final,
            start_ns: 0,
            end_ns: 1,
            counts: &s,
            events: &crate::model::events::EventLog::default(),
            memory: Some((&mem, None)),
            command: Some(CommandExit {
                pid: 42,
                exit_code: Some(0),
                signal: None,
                signo: None,
            }),
        };
        let mut r = Report::build(&w, &ctx);
        r.events = vec![
            ProcessEvent::Fork {
                t_s: 0.0,
                pid: 1,
                tid: 1,
                child_pid: 2,
                child_tid: 2,
                thread: false,
                followed: false,
            },
            ProcessEvent::Exec {
                t_s: 0.0,
                pid: 1,
                tid: 1,
                old_tid: 1,
                comm: "x".into(),
            },
            ProcessEvent::Exit {
                t_s: 0.0,
                pid: 1,
                tid: 1,
                process: true,
                exit_code: None,
                signal: None,
                core_dumped: false,
            },
            ProcessEvent::Signal {
                t_s: 0.0,
                pid: 1,
                tid: 1,
                signal: "SIGTERM".into(),
                sender_pid: None,
                result: "delivered",
            },
            ProcessEvent::OomKill {
                t_s: 0.0,
                pid: 1,
                tid: 1,
                comm: "x".into(),
                traced: true,
            },
        ];
        r.crashes = vec![crate::model::events::CrashReport {
            t_s: 0.0,
            pid: 1,
            tid: 2,
            thread: "x".into(),
            signal: "SIGSEGV".into(),
            code: 1,
            code_name: "SEGV_MAPERR".into(),
            addr: Some("0x10".into()),
            ip: Some("0x4000".into()),
            sender_pid: None,
            fatal: Some(true),
            core_dumped: false,
            slot: 0,
        }];
        r.oom_kills = Some(vec![OomReport {
            t_s: 0.0,
            pid: 1,
            comm: "x".into(),
            anon_rss_bytes: 0,
            file_rss_bytes: 0,
            shmem_rss_bytes: 0,
            swap_bytes: 0,
            total_vm_bytes: 0,
            cgroup: "/".into(),
            traced: false,
        }]);
        {
            use crate::model::anatomy::{Anatomy, RawAnatomy, RawFd, RawSocket};
            let raw = RawAnatomy {
                fds: vec![RawFd::Path("/x".into()), RawFd::Socket(1)],
                sockets: [(
                    1,
                    RawSocket {
                        family: "tcp",
                        state: "ESTABLISHED".into(),
                        local: "1.2.3.4:5".into(),
                        peer: Some("1.2.3.5:6".into()),
                    },
                )]
                .into(),
                ..Default::default()
            };
            let mut a = Anatomy::build(&raw, None);
            a.zombie_children.listed = vec![crate::model::anatomy::Zombie {
                pid: 3,
                comm: "z".into(),
                zombie_s: 1.0,
                since: "exit",
            }];
            a.orphaned = Some(crate::model::anatomy::Orphan {
                parent_was: 2,
                parent: 1,
                parent_comm: None,
                orphaned_s: 1.0,
            });
            r.processes[0].members = vec![crate::model::anatomy::MemberAnatomy {
                slot: 0,
                pid: 4,
                anatomy: a.clone(),
            }];
            r.processes[0].anatomy = Some(a);
        }
        r.anomalies = vec![crate::model::anomaly::Anomaly {
            kind: crate::model::anomaly::AnomalyKind::NewErrno,
            target: "42 (w)".into(),
            syscall: "openat".into(),
            errno: Some("EACCES".into()),
            value: 1.0,
            baseline: 0.0,
            started: r.start,
            new: false,
            windows: 1,
            slot: 0,
        }];
        let v = serde_json::to_value(&r).unwrap();

        for key in v.as_object().unwrap().keys() {
            let named = format!("`{key}`");
            assert!(
                top_level_rows.iter().any(|c| c.contains(&named)),
                "top-level {key} has no row"
            );
        }
        fn keys(v: &serde_json::Value, out: &mut Vec<String>) {
            match v {
                serde_json::Value::Object(m) => {
                    for (k, v) in m {
                        out.push(k.clone());
                        // Maps whose keys are data: errno names, descriptor types,
                        // socket families and states.
                        if !["errnos", "by_type", "sockets"].contains(&k.as_str()) {
                            keys(v, out);
                        }
                    }
                }
                serde_json::Value::Array(a) => a.iter().for_each(|v| keys(v, out)),
                _ => {}
            }
        }
        let mut all = Vec::new();
        keys(&v, &mut all);
        assert!(all.len() > 150, "{} keys", all.len());
        for k in all {
            assert!(
                [format!("`{k}`"), format!(".{k}`"), format!("`{k}.")]
                    .iter()
                    .any(|n| doc.contains(n.as_str())),
                "{k} is not documented"
            );
        }
    }

    #[test]
    fn memory_fds_and_oom_kills_have_the_documented_shape() {
        use crate::model::memory::{
            FdReport, KernelMem, MemTrack, ProcReading, Rss, fd_report, memory_report,
        };
        use tracer_common::memory::MemSyscalls;
        let targets = [ProcessInfo {
            pid: 42,
            comm: "w".into(),
        }];
        let mut r = Report::build(
            &crate::model::window(ReportKind::Final, &Sample::default(), 2.0),
            &crate::model::ctx(&targets),
        );
        // Without the memory section, none of its keys appear.
        let v = serde_json::to_value(&r).unwrap();
        assert!(v.get("memory").is_none() && v.get("fds").is_none());
        assert!(v.get("oom_kills").is_none());

        let start = ProcReading {
            rss: Some(Rss {
                anon_bytes: 1 << 20,
                ..Default::default()
            }),
            fds: Some(3),
            nofile_limit: Some(1024),
            brk: Some(0x1000),
            ..Default::default()
        };
        let track = MemTrack::new(false, Some(start));
        let k = KernelMem {
            sys: MemSyscalls {
                brk: 0x1000 + 4096,
                anon_mapped: 8192,
                fds_opened: 2,
                fds_peak_net: 2,
                ..Default::default()
            },
            ..Default::default()
        };
        r.memory = Some(memory_report(&track, &k, 4096));
        r.fds = Some(fd_report(&track, &k, 1, 0));
        r.processes[0].fds = Some(FdReport::default());
        r.oom_kills = Some(Vec::new());
        let v = serde_json::to_value(&r).unwrap();
        let m = &v["memory"];
        assert_eq!(m["brk_growth_bytes"], 4096);
        for key in ["anon_mapped_bytes", "file_mapped_bytes", "unmapped_bytes"] {
            assert!(m["mmap"][key].is_u64(), "{key}");
        }
        assert_eq!(m["mmap"]["anon_mapped_bytes"], 8192);
        assert_eq!(m["rss"]["start_bytes"], 1 << 20);
        assert!(m["rss"]["end_bytes"].is_u64());
        assert!(m["rss"]["growth_bytes_per_s"].is_f64());
        assert!(m["page_faults"]["minor"].is_u64() && m["page_faults"]["major"].is_u64());
        let f = &v["fds"];
        assert_eq!((f["start"].as_u64(), f["end"].as_u64()), (Some(3), Some(5)));
        assert_eq!(f["limit"], 1024);
        assert_eq!(f["emfile_errors"], 1);
        assert!(f["warning"].as_str().unwrap().contains("EMFILE"));
        assert_eq!(v["oom_kills"], serde_json::json!([]));
        assert_eq!(v["processes"][0]["fds"]["start"], 0);
    }
}
