//! `--stack`: each streamed call's user stack, symbolized. The workload's `stack` mode makes
//! its calls from functions with known frames (written out with frame pointers), through
//! the `syscall` instruction and through libc's wrapper (node's JIT frames: tests/jit.rs).
//! These load eBPF programs (root).
mod common;

use common::*;
use serde_json::Value;

/// The workload's path as the process's mappings name it.
fn workload_path() -> String {
    std::fs::canonicalize(WORKLOAD)
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

/// tracer's output for the workload run with `workload` under `--stack` and `args`; it must
/// succeed.
fn traced(args: &[&str], workload: &[&str]) -> std::process::Output {
    let out = run(tracer()
        .args(["--sections", "syscalls", "--stack"])
        .args(args)
        .arg("--")
        .arg(WORKLOAD)
        .args(workload));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Each call line of a text stream (`name(...) = result`, without time and thread) with
/// the frame lines that follow it (` > ...`, without the ` > `).
fn calls_with_frames(stdout: &[u8]) -> Vec<(String, Vec<String>)> {
    let mut calls: Vec<(String, Vec<String>)> = Vec::new();
    for line in String::from_utf8_lossy(stdout).lines() {
        if let Some(frame) = line.strip_prefix(" > ") {
            if let Some(last) = calls.last_mut() {
                last.1.push(frame.to_string());
            }
        } else if let Some((_, call)) = line.split_once("] ") {
            calls.push((call.to_string(), Vec::new()));
        }
    }
    calls
}

#[test]
fn stacks_name_the_functions_that_made_the_calls() {
    let Some(_guard) = ebpf_test() else { return };
    let out = traced(&["--trace=getuid,getppid"], &["stack", "3"]);
    let exe = workload_path();
    let calls = calls_with_frames(&out.stdout);
    let getuid: Vec<_> = calls
        .iter()
        .filter(|c| c.0.starts_with("getuid()"))
        .collect();
    let getppid: Vec<_> = calls
        .iter()
        .filter(|c| c.0.starts_with("getppid()"))
        .collect();
    assert_eq!((getuid.len(), getppid.len()), (3, 3), "{calls:#?}");
    for (_, frames) in getuid {
        // The syscall instruction is 11 bytes into the leaf, the call 9 into its caller;
        // then the Rust function that called it (this binary keeps no frame pointers, so
        // the walk ends around there).
        assert!(frames.len() >= 3, "{frames:#?}");
        assert!(
            frames[0].starts_with(&format!("{exe}(tracer_stack_leaf+0xb) [0x")),
            "{frames:#?}"
        );
        assert!(
            frames[1].starts_with(&format!("{exe}(tracer_stack_caller+0x9) [0x")),
            "{frames:#?}"
        );
        assert!(
            frames[2].starts_with(&format!("{exe}(tracer_workload::stack::run+0x")),
            "{frames:#?}"
        );
    }
    for (_, frames) in getppid {
        // libc's wrapper keeps no frame: the walk goes from it to the caller of the function
        // that called it.
        assert!(frames.len() >= 2, "{frames:#?}");
        let (module, rest) = frames[0].split_once('(').unwrap();
        assert!(module.ends_with("/libc.so.6"), "{frames:#?}");
        assert!(
            rest.starts_with("getppid+0x") || rest.starts_with("__getppid+0x"),
            "{frames:#?}"
        );
        assert!(
            frames[1].starts_with(&format!("{exe}(tracer_stack_libc_user+0x")),
            "{frames:#?}"
        );
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(
            "tracer: 6 calls streamed, 0 lost (ring buffer full: 0, call table full: 0)\n"
        ),
        "{stdout}"
    );
}

#[test]
fn json_calls_carry_their_frames_and_calls_with_paths_too() {
    let Some(_guard) = ebpf_test() else { return };
    let exe = workload_path();
    let out = traced(&["--trace=getuid", "--output", "json"], &["stack", "2"]);
    let lines = json_lines(&out);
    let calls: Vec<&Value> = lines.iter().filter(|v| v["type"] == "call").collect();
    assert_eq!(calls.len(), 2);
    for c in calls {
        let stack = c["stack"].as_array().unwrap();
        assert_eq!(stack[0]["symbol"], "tracer_stack_leaf", "{c}");
        assert_eq!(stack[0]["offset"], 11);
        assert_eq!(stack[0]["module"], exe.as_str());
        assert!(stack[0]["addr"].as_u64().unwrap() > 0x1000);
        assert_eq!(stack[1]["symbol"], "tracer_stack_caller");
        assert_eq!(stack[1]["offset"], 9);
    }
    let summary = lines.iter().find(|v| v["type"] == "trace_summary").unwrap();
    assert_eq!(summary["stacks_lost"], 0, "{summary}");

    // Calls with one and two captured paths: the stack follows them in the record.
    let dir = std::env::temp_dir().join(format!("tracer-stack-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = traced(
        &["--trace=rename,mkdir", "--output", "json"],
        // A pause after the calls: the stacks of a process that has exited before they are
        // decoded are not named (the guests of the kernel matrix decode late).
        &["files", dir.to_str().unwrap(), "1500"],
    );
    std::fs::remove_dir_all(&dir).unwrap();
    let lines = json_lines(&out);
    let calls: Vec<&Value> = lines.iter().filter(|v| v["type"] == "call").collect();
    let names: Vec<&str> = calls
        .iter()
        .map(|c| c["syscall"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["mkdir", "rename"]);
    for c in calls {
        assert!(!c["paths"].as_array().unwrap().is_empty());
        let stack = c["stack"].as_array().unwrap();
        // libc's `mkdir`, `rename` or `syscall`: the workload makes some through the last.
        let first = stack[0]["module"].as_str().unwrap_or_default();
        assert!(first.ends_with("/libc.so.6"), "{c}");
        assert!(stack[0]["symbol"].is_string(), "{c}");
    }
}

#[test]
fn stack_without_trace_is_refused_in_one_line() {
    let out = run(tracer().args(["-p", "1", "--stack"]));
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("--stack shows the stacks of --trace's calls"),
        "{err}"
    );
}
