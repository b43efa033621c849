//! The deployment files (`deploy/`, issue 13) checked by the tools that read them: the
//! Kubernetes manifests against Kubernetes's schemas (kubernetes-validate, strict), the
//! Prometheus configurations by `promtool check config`, the systemd unit by
//! `systemd-analyze verify`; and tracer run with exactly the capabilities the DaemonSet
//! gives it, as an unprivileged user, counting a root process's calls and descriptors.
//! The DaemonSet's content against README (confinement, probes, the scraped port), and
//! the dashboard's metric names against a real scrape of tracer. (The dashboard's queries
//! run against Prometheus in tests/prometheus.rs.) Host only: the tools are not in the
//! kernel matrix's guests. `cargo xtask test` installs them.
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

/// The documents of a YAML file, as JSON (PyYAML, which kubernetes-validate brings into
/// `cargo xtask test`'s Python environment).
fn yaml_documents(file: &str) -> Option<Vec<serde_json::Value>> {
    let python = tool(&format!("{PYTHON_TOOLS}/python"))?;
    let out = Command::new(python)
        .args([
            "-c",
            "import json, sys, yaml; print(json.dumps(list(yaml.safe_load_all(open(sys.argv[1])))))",
        ])
        .arg(deploy(file))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    Some(serde_json::from_slice(&out.stdout).unwrap())
}

/// The port of an `ADDR:PORT` after `--listen` in a list of arguments.
fn listen_port<'a>(args: impl IntoIterator<Item = &'a str>) -> u64 {
    let args: Vec<&str> = args.into_iter().collect();
    let i = args
        .iter()
        .position(|a| *a == "--listen")
        .expect("--listen");
    args[i + 1].rsplit(':').next().unwrap().parse().unwrap()
}

/// The DaemonSet is confined as README's table of deploy/ says: the host's PID namespace,
/// every capability dropped but those README names, not privileged, no escalation, a
/// read-only root filesystem, CPU and memory requests and limits, liveness and readiness
/// on `/healthz` at the port tracer listens on; and the port Prometheus is told to scrape
/// (the pod's annotations, which the Kubernetes job keeps and follows) is that one, as the
/// plain host's prometheus.yml scrapes the systemd unit's.
#[test]
fn the_daemonset_is_confined_as_documented() {
    let Some(docs) = yaml_documents("kubernetes/daemonset.yaml") else {
        return;
    };
    let ds = docs
        .iter()
        .find(|d| d["kind"] == "DaemonSet")
        .expect("a DaemonSet");
    let pod = &ds["spec"]["template"];
    let spec = &pod["spec"];
    assert_eq!(spec["hostPID"], true);
    assert_ne!(spec["hostNetwork"], true, "{spec}");
    let containers = spec["containers"].as_array().unwrap();
    assert_eq!(containers.len(), 1);
    let c = &containers[0];
    let sc = &c["securityContext"];
    assert_eq!(sc["privileged"], false, "{sc}");
    assert_eq!(sc["allowPrivilegeEscalation"], false, "{sc}");
    assert_eq!(sc["readOnlyRootFilesystem"], true, "{sc}");
    assert_eq!(
        sc["capabilities"]["drop"],
        serde_json::json!(["ALL"]),
        "{sc}"
    );
    let mut added: Vec<&str> = sc["capabilities"]["add"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    added.sort();
    // README's row for the DaemonSet: "every capability dropped but `BPF`, `PERFMON` ...;".
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"))
            .unwrap();
    let row = readme
        .lines()
        .find(|l| l.starts_with("| `deploy/kubernetes/daemonset.yaml`"))
        .expect("README's row for the DaemonSet");
    let listed = row
        .split_once("every capability dropped but ")
        .and_then(|(_, rest)| rest.split_once(';'))
        .map(|(caps, _)| caps)
        .expect("README says which capabilities are kept");
    let mut documented: Vec<&str> = listed
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|w| w.chars().all(|c| c.is_ascii_uppercase() || c == '_'))
        .collect();
    documented.sort();
    assert_eq!(added, documented, "README: {listed}");
    // The systemd unit keeps the same ones.
    let unit = std::fs::read_to_string(deploy("tracer.service")).unwrap();
    for key in ["CapabilityBoundingSet=", "AmbientCapabilities="] {
        let line = unit.lines().find_map(|l| l.strip_prefix(key)).expect(key);
        let mut caps: Vec<&str> = line
            .split_whitespace()
            .map(|c| c.strip_prefix("CAP_").unwrap())
            .collect();
        caps.sort();
        assert_eq!(caps, documented, "{key}");
    }

    for kind in ["requests", "limits"] {
        for what in ["cpu", "memory"] {
            assert!(
                c["resources"][kind][what].is_string(),
                "no {kind}.{what}: {}",
                c["resources"]
            );
        }
    }
    let args = c["args"].as_array().unwrap();
    let port = listen_port(args.iter().map(|a| a.as_str().unwrap()));
    let ports = c["ports"].as_array().unwrap();
    let named = |name: &serde_json::Value| -> u64 {
        match name {
            serde_json::Value::Number(n) => n.as_u64().unwrap(),
            serde_json::Value::String(s) => ports
                .iter()
                .find(|p| p["name"] == *s)
                .unwrap_or_else(|| panic!("no port named {s}"))["containerPort"]
                .as_u64()
                .unwrap(),
            other => panic!("a port {other}"),
        }
    };
    for probe in ["livenessProbe", "readinessProbe"] {
        let get = &c[probe]["httpGet"];
        assert_eq!(get["path"], "/healthz", "{probe}: {get}");
        assert_eq!(named(&get["port"]), port, "{probe}: {get}");
    }
    let notes = &pod["metadata"]["annotations"];
    assert_eq!(notes["prometheus.io/scrape"], "true", "{notes}");
    assert_eq!(notes["prometheus.io/path"], "/metrics", "{notes}");
    assert_eq!(
        notes["prometheus.io/port"]
            .as_str()
            .unwrap()
            .parse::<u64>()
            .ok(),
        Some(port),
        "{notes}"
    );
    assert!(
        ports
            .iter()
            .any(|p| p["containerPort"] == port && p["protocol"] == "TCP")
    );

    // The Kubernetes job keeps the pods annotated to be scraped that carry the DaemonSet's
    // name label, and scrapes the annotated port (at the default path, /metrics).
    let job = &yaml_documents("kubernetes/prometheus-scrape.yml").unwrap()[0]["scrape_configs"][0];
    assert!(
        job["metrics_path"].is_null() || job["metrics_path"] == "/metrics",
        "{job}"
    );
    let rules = job["relabel_configs"].as_array().unwrap();
    let rule = |label: &str| {
        rules
            .iter()
            .find(|r| {
                r["source_labels"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|l| l == label)
            })
            .unwrap_or_else(|| panic!("no rule on {label}"))
    };
    let keep = rule("__meta_kubernetes_pod_annotation_prometheus_io_scrape");
    assert_eq!(
        (&keep["action"], &keep["regex"]),
        (&"keep".into(), &"true".into())
    );
    let name = rule("__meta_kubernetes_pod_label_app_kubernetes_io_name");
    assert_eq!(name["action"], "keep");
    assert_eq!(
        name["regex"],
        pod["metadata"]["labels"]["app.kubernetes.io/name"]
    );
    let to = rule("__meta_kubernetes_pod_annotation_prometheus_io_port");
    assert_eq!(to["target_label"], "__address__");
    // A plain host's Prometheus scrapes the port the systemd unit listens on.
    let exec = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .unwrap();
    let unit_port = listen_port(exec.split_whitespace());
    let prom = &yaml_documents("prometheus.yml").unwrap()[0]["scrape_configs"][0];
    let targets = prom["static_configs"][0]["targets"].as_array().unwrap();
    assert!(
        targets
            .iter()
            .all(|t| t.as_str().unwrap().ends_with(&format!(":{unit_port}"))),
        "{targets:?}, the unit listens on {unit_port}"
    );
    assert_eq!(
        unit_port, port,
        "the unit and the DaemonSet listen on one port"
    );
}

/// The `tracer_*` names a scrape of the endpoint serves: each family's own name and its
/// samples' (a counter's `_total`, a histogram's `_bucket`, `_sum` and `_count`).
fn served_names(scrape: &str) -> std::collections::BTreeSet<String> {
    let mut names = std::collections::BTreeSet::new();
    for line in scrape.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut words = rest.split_whitespace();
            let (name, kind) = (words.next().unwrap(), words.next().unwrap());
            let suffixes: &[&str] = match kind {
                "counter" => &["_total"],
                "histogram" => &["_bucket", "_sum", "_count"],
                _ => &[""],
            };
            for s in suffixes {
                names.insert(format!("{name}{s}"));
            }
        } else if !line.starts_with('#') && !line.is_empty() {
            let end = line.find(['{', ' ']).unwrap_or(line.len());
            names.insert(line[..end].to_string());
        }
    }
    names
}

/// Every `tracer_*` metric the Grafana dashboard queries (its panels' and its variables'
/// queries) is one a real tracer serves: a scrape of `--listen` while a launched workload
/// runs (so that every family has its series).
#[test]
fn the_dashboard_queries_only_what_tracer_exports() {
    let Some(_g) = ebpf_test() else { return };
    let text = std::fs::read_to_string(deploy("grafana/tracer-dashboard.json")).unwrap();
    let dash: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut queries: Vec<String> = Vec::new();
    fn walk(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, v) in m {
                    match v {
                        serde_json::Value::String(s)
                            if k == "expr" || k == "query" || k == "definition" =>
                        {
                            out.push(s.clone())
                        }
                        _ => walk(v, out),
                    }
                }
            }
            serde_json::Value::Array(a) => a.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    walk(&dash, &mut queries);
    let mut wanted = std::collections::BTreeSet::new();
    for q in &queries {
        let mut rest = q.as_str();
        while let Some(i) = rest.find("tracer_") {
            let name: String = rest[i..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            rest = &rest[i + name.len()..];
            wanted.insert(name);
        }
    }
    assert!(wanted.len() >= 10, "{wanted:?} in {queries:?}");

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut t = tracer();
    t.env_remove("LD_LIBRARY_PATH")
        .args([
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--interval",
            "0.2",
        ])
        .args(["--", WORKLOAD, "steady", "200", "30", "3"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    // A memory limit in force (RLIMIT_DATA, 64 GiB: tracer and its command inherit it),
    // so that tracer_memory_limit_bytes has a series.
    // SAFETY: setrlimit is async-signal-safe; the struct is valid.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut t, || {
            let limit = libc::rlimit {
                rlim_cur: 64 << 30,
                rlim_max: libc::RLIM_INFINITY,
            };
            if libc::setrlimit(libc::RLIMIT_DATA, &limit) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        })
    };
    let mut t = t.spawn().unwrap();
    let _err = wait_for_stderr(&mut t, "tracing");
    let t = KillOnDrop(t);
    let url = format!("http://127.0.0.1:{port}/metrics");
    let mut missing = wanted.clone();
    let begun = std::time::Instant::now();
    let mut scrape = String::new();
    while !missing.is_empty() && begun.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(300));
        let mut r = http().get(&url).call().unwrap();
        assert_eq!(r.status(), 200);
        scrape = r.body_mut().read_to_string().unwrap();
        let served = served_names(&scrape);
        missing.retain(|n| !served.contains(n));
    }
    drop(t);
    assert!(
        missing.is_empty(),
        "the dashboard queries {missing:?}, which tracer does not serve:\n{scrape}"
    );
}
