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
        assert_eq!(row["calls"], 4);
        assert_eq!(row["errors"], 4);
        assert_eq!(row["errnos"], serde_json::json!({"ENOENT": 4}));
        assert_eq!(row["total_ns"], 4000);
        assert_eq!(row["avg_ns"], 1000);
        assert_eq!(row["max_ns"], 1500);
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
}
