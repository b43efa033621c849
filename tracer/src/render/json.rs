//! JSON output: one object per report, one line each (NDJSON). The schema is documented in
//! docs/json-schema.md; fields are only ever added.
use std::io::Write;

use crate::model::Report;

pub fn write(out: &mut dyn Write, report: &Report) -> std::io::Result<()> {
    serde_json::to_writer(&mut *out, report)?;
    out.write_all(b"\n")
}

#[cfg(test)]
mod tests {
    use crate::model::{ProcessInfo, Report, ReportKind, Sample, SyscallCounts};
    use tracer_common::hist;

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
            ReportKind::Final,
            &s,
            &[],
            &crate::model::ctx(&targets),
            2.0,
            None,
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
            ReportKind::Final,
            &Sample::default(),
            &[],
            &crate::model::ctx(&targets),
            2.0,
            None,
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
