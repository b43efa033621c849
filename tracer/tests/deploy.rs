//! The deployment files (`deploy/`, issue 13) checked by the tools that read them: the
//! Kubernetes manifests against Kubernetes's schemas (kubernetes-validate, strict), the
//! Prometheus configurations by `promtool check config`, the systemd unit by
//! `systemd-analyze verify`; and tracer run with exactly the capabilities the DaemonSet
//! gives it, as an unprivileged user, counting a root process's calls and descriptors.
//! (The dashboard's queries run against Prometheus in tests/prometheus.rs.) Host only: the
//! tools are not in the kernel matrix's guests. `cargo xtask test` installs them.
mod common;

use std::{
    io::Write,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Duration,
};

use common::*;

/// Where `cargo xtask test` puts kubernetes-validate (a Python virtual environment).
const PYTHON_TOOLS: &str = "/var/tmp/tracer-python/bin";

fn deploy(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy")
        .join(file)
}

/// Runs a checker; it must succeed and complain about nothing.
fn check(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{cmd:?}: {}{err}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        !err.contains("WARN") && !err.contains("ignoring") && !err.contains("rror"),
        "{cmd:?}: {err}"
    );
}

fn tool(path: &str) -> Option<PathBuf> {
    let p = PathBuf::from(path);
    if p.exists() {
        Some(p)
    } else {
        skip(&format!(
            "{path} is not installed (cargo xtask test installs it)"
        ));
        None
    }
}

#[test]
fn the_kubernetes_manifests_follow_the_schemas() {
    let Some(kv) = tool(&format!("{PYTHON_TOOLS}/kubernetes-validate")) else {
        return;
    };
    let out = Command::new(kv)
        .arg("--strict")
        .arg(deploy("kubernetes/daemonset.yaml"))
        .output()
        .unwrap();
    let said =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}");
    // Each resource of the file passed, and nothing else was said.
    for kind in ["namespace/tracer", "daemonset/tracer"] {
        assert!(
            said.contains(&format!("passed for resource {kind}")),
            "{said}"
        );
    }
    assert!(!said.contains("WARN") && !said.contains("ERROR"), "{said}");
}

#[test]
fn the_prometheus_configurations_are_valid() {
    let Some(promtool) = tool("/usr/bin/promtool") else {
        return;
    };
    check(
        Command::new(&promtool)
            .args(["check", "config"])
            .arg(deploy("prometheus.yml")),
    );
    // Debian's promtool is built without Kubernetes discovery: the job is checked with a
    // static target in its place, so its other fields and relabelling rules are.
    let job = std::fs::read_to_string(deploy("kubernetes/prometheus-scrape.yml")).unwrap();
    let swapped = job.replace(
        "    kubernetes_sd_configs:\n      - role: pod\n",
        "    static_configs:\n      - targets: ['127.0.0.1:9464']\n",
    );
    assert_ne!(swapped, job, "the discovery block moved");
    let copy = std::env::temp_dir().join(format!("tracer-scrape-{}.yml", std::process::id()));
    std::fs::write(&copy, swapped).unwrap();
    check(Command::new(&promtool).args(["check", "config"]).arg(&copy));
    let _ = std::fs::remove_file(copy);
}

#[test]
fn the_systemd_unit_verifies() {
    let Some(analyze) = tool("/usr/bin/systemd-analyze") else {
        return;
    };
    // With the built tracer where the unit expects the installed one.
    let unit = std::fs::read_to_string(deploy("tracer.service")).unwrap();
    assert!(unit.contains("ExecStart=/usr/local/bin/tracer "), "{unit}");
    let dir = std::env::temp_dir().join(format!("tracer-unit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let copy = dir.join("tracer.service");
    std::fs::write(&copy, unit.replace("/usr/local/bin/tracer", TRACER)).unwrap();
    check(Command::new(analyze).arg("verify").arg(&copy));
    let _ = std::fs::remove_dir_all(dir);
}

/// The capabilities the DaemonSet adds (its `capabilities.add` list), lower case.
fn daemonset_capabilities() -> Vec<String> {
    let yaml = std::fs::read_to_string(deploy("kubernetes/daemonset.yaml")).unwrap();
    let mut lines = yaml.lines().skip_while(|l| l.trim() != "add:").skip(1);
    let mut caps = Vec::new();
    while let Some(cap) = lines.next().and_then(|l| l.trim().strip_prefix("- ")) {
        caps.push(cap.to_lowercase());
    }
    assert!(yaml.contains("- ALL"), "the DaemonSet drops all others");
    caps
}

/// The number of a capability (linux/capability.h), for those the manifests name.
fn capability_bit(name: &str) -> u32 {
    match name {
        "dac_read_search" => 2,
        "sys_ptrace" => 19,
        "sys_resource" => 24,
        "perfmon" => 38,
        "bpf" => 39,
        other => panic!("capability {other} unknown to this test"),
    }
}

/// tracer as user nobody with only the DaemonSet's capabilities (setpriv, util-linux),
/// attached to a root process making known calls: its calls are counted exactly and its
/// descriptors read from its /proc entry (which needs SYS_PTRACE).
#[test]
fn tracer_runs_with_only_the_daemonsets_capabilities() {
    let Some(_g) = ebpf_test() else { return };
    let mut caps = daemonset_capabilities();
    assert!(caps.contains(&"bpf".to_string()), "{caps:?}");
    // Those this test process has itself (its bounding set) can be given: running with
    // fewer than the DaemonSet's, if the machine withholds some, shows theirs suffice.
    let bounding = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .unwrap();
    caps.retain(|c| {
        let bit = capability_bit(c);
        let held = bounding & (1 << bit) != 0;
        if !held {
            eprintln!(
                "CAP_{} is not given: this machine withholds it",
                c.to_uppercase()
            );
        }
        held
    });
    let set = format!(
        "-all,{}",
        caps.iter()
            .map(|c| format!("+{c}"))
            .collect::<Vec<_>>()
            .join(",")
    );
    let mut work = ready_workload(WORKLOAD, &["syscalls", "500", "20", "7"]);
    let fds_now = std::fs::read_dir(format!("/proc/{}/fd", work.id()))
        .unwrap()
        .count() as u64;
    let mut tr = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(format!("--inh-caps={set}"))
        .arg(format!("--ambient-caps={set}"))
        .arg(format!("--bounding-set={set}"))
        .args([TRACER, "--output", "json", "--pid", &work.id().to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let _err = wait_for_stderr(&mut tr, "tracing");
    work.stdin.as_mut().unwrap().write_all(b"go\n").unwrap();
    assert!(work.wait().unwrap().success());
    let out = wait_output(tr, Duration::from_secs(30));
    assert!(out.status.success(), "{out:?}");
    let r = final_report(&out);
    assert_calls(&r, "getppid", 500);
    assert_eq!(r["fds"]["start"], fds_now, "{}", r["fds"]);
}
