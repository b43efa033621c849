//! `--stack` on node: its JIT code is named from the perf map `--perf-basic-prof` writes.
//! Loads eBPF programs (root). Runs on the host only (see `HOST_ONLY` in
//! xtask/src/matrix.rs): in the kernel matrix's guests no frame was named from the perf map
//! though node had written it (NOTES.md).
mod common;

use std::process::Command;

use common::*;
use serde_json::Value;

/// node's JIT code is in no file: `--perf-basic-prof` writes its symbols to
/// /tmp/perf-PID.map, and V8's frames keep frame pointers, so the walk reaches them.
#[test]
fn node_jit_frames_are_named_from_its_perf_map() {
    if Command::new("node").arg("--version").output().is_err() {
        // Debian's nodejs, installed by `cargo xtask setup`; the matrix's guests have the host's.
        return skip("node is not installed (Debian's nodejs package)");
    }
    let Some(_guard) = ebpf_test() else { return };
    let script = "const fs = require('fs');\n\
        function tracerStackProbe(i) { return fs.statSync('/nonexistent/tracer-stack-' + i, {throwIfNoEntry: false}); }\n\
        for (let i = 0; i < 5000; i++) tracerStackProbe(i % 3);\n\
        setTimeout(() => {}, 1000);\n";
    // `--perf-basic-prof` also makes V8 write its log (isolate-*-v8.log) where it runs.
    let cwd = std::env::temp_dir().join(format!("tracer-stack-node-{}", std::process::id()));
    std::fs::create_dir_all(&cwd).unwrap();
    let out = run(tracer().current_dir(&cwd).args([
        "--sections",
        "syscalls",
        "--trace=statx,newfstatat",
        "--failed",
        "--stack",
        "--trace-buffer",
        "64M",
        "--output",
        "json",
        "--",
        "node",
        "--perf-basic-prof",
        "-e",
        script,
    ]));
    std::fs::remove_dir_all(&cwd).unwrap();
    let lines = json_lines(&out);
    let pid = lines
        .iter()
        .find(|v| v["type"] == "call")
        .map(|c| c["pid"].as_u64().unwrap());
    // What node wrote, for the failure message.
    let written = pid.map(|pid| {
        let path = format!("/tmp/perf-{pid}.map");
        let text = std::fs::read_to_string(&path);
        let _ = std::fs::remove_file(&path);
        match text {
            Ok(t) => format!(
                "{path}: {} lines, {} naming tracerStackProbe",
                t.lines().count(),
                t.lines().filter(|l| l.contains("tracerStackProbe")).count()
            ),
            Err(e) => format!("{path}: {e}"),
        }
    });
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pid = pid.expect("no call streamed");
    let map = format!("/tmp/perf-{pid}.map");
    let ours: Vec<&Value> = lines
        .iter()
        .filter(|v| {
            v["type"] == "call"
                && v["paths"][0]["path"]
                    .as_str()
                    .is_some_and(|p| p.starts_with("/nonexistent/tracer-stack-"))
        })
        .collect();
    assert!(!ours.is_empty());
    let jit = ours.iter().any(|c| {
        c["stack"].as_array().unwrap().iter().any(|f| {
            f["module"] == map.as_str()
                && f["symbol"]
                    .as_str()
                    .is_some_and(|s| s.contains("tracerStackProbe"))
        })
    });
    let from_map = ours
        .iter()
        .filter(|c| {
            c["stack"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f["module"] == map.as_str())
        })
        .count();
    assert!(
        jit,
        "no frame of tracerStackProbe from {map} ({written:?}; {from_map} of {} calls with a frame from it): {:#?}",
        ours.len(),
        ours.last()
    );
    // And the native frames below: libuv's stat in node's own binary.
    assert!(
        ours.iter().any(
            |c| c["stack"].as_array().unwrap().iter().any(|f| f["symbol"]
                .as_str()
                .is_some_and(|s| s.contains("uv_fs_stat")))
        )
    );
}
