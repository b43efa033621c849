//! What a guest run says: each check's outcome, and for a failure why (the assertion's
//! message, tracer's one line, the verifier's reason), read from the guest's two logs; and
//! the table of kernels by checks.

/// How one check went on one kernel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    Failed(String),
}

/// Every check of one kernel, in the order they ran.
#[derive(Debug, Default)]
pub struct KernelResult {
    pub checks: Vec<(String, Outcome)>,
}

impl KernelResult {
    pub fn failures(&self) -> impl Iterator<Item = (&str, &str)> {
        self.checks.iter().filter_map(|(c, o)| match o {
            Outcome::Failed(why) => Some((c.as_str(), why.as_str())),
            Outcome::Ok => None,
        })
    }

    fn push(&mut self, check: impl Into<String>, o: Outcome) {
        self.checks.push((check.into(), o));
    }
}

/// Kernel log lines that fail a kernel: warnings, oopses, BUGs, and the BPF verifier's
/// complaint about tracing programs allocating. (The stack an OOM kill prints is not one:
/// the tests cause OOM kills on purpose.)
const KERNEL_PROBLEMS: &[&str] = &[
    "WARNING:",
    "BUG:",
    "Oops",
    "Kernel panic",
    "general protection fault",
    "invalid opcode",
    "UBSAN:",
    "KASAN:",
    "unreferenced object",
    "run-time allocation",
];

/// Reads one guest run. `tests`: the test binaries it was to run, each with whether its
/// tests are reported as one check (the unit tests) or one check each.
pub fn analyze(console: &str, serial: &str, tests: &[(String, bool)]) -> KernelResult {
    let mut r = KernelResult::default();
    if console.contains("KMATRIX init") {
        r.push("guest boots", Outcome::Ok);
    } else {
        let why = first_problem(console)
            .unwrap_or("no output from /init")
            .to_string();
        r.push("guest boots", Outcome::Failed(why));
        return r;
    }
    for (name, aggregate) in tests {
        let begin = format!("KMATRIX begin {name}\n");
        let Some(start) = serial.find(&begin).map(|i| i + begin.len()) else {
            r.push(
                format!("{name}: ran"),
                Outcome::Failed(format!(
                    "the guest stopped before {name}: {}",
                    last_words(console)
                )),
            );
            continue;
        };
        let section = &serial[start..];
        let end_marker = format!("KMATRIX end {name} rc=");
        let (output, rc) = match section.find(&end_marker) {
            Some(i) => {
                let rc = section[i + end_marker.len()..]
                    .lines()
                    .next()
                    .and_then(|l| l.trim().parse::<i32>().ok());
                (&section[..i], rc)
            }
            None => (section, None),
        };
        binary_checks(&mut r, name, *aggregate, output, rc, console);
    }
    let dmesg = serial
        .split_once("KMATRIX dmesg\n")
        .map_or("", |(_, d)| d.split("KMATRIX done").next().unwrap_or(d));
    let problem = first_problem(dmesg).or_else(|| first_problem(console));
    r.push(
        "kernel log: no warning, oops or BPF complaint",
        match problem {
            Some(line) => Outcome::Failed(line.to_string()),
            None if !serial.contains("KMATRIX done") => {
                Outcome::Failed(format!("the guest did not finish: {}", last_words(console)))
            }
            None => Outcome::Ok,
        },
    );
    r
}

/// The checks of one test binary's output (libtest's, run with --test-threads=1).
fn binary_checks(
    r: &mut KernelResult,
    name: &str,
    aggregate: bool,
    output: &str,
    rc: Option<i32>,
    console: &str,
) {
    let mut results: Vec<(String, Option<&str>)> = Vec::new();
    for line in output.lines() {
        if let Some(rest) = line.strip_prefix("test ")
            && let Some((test, result)) = rest.split_once(" ... ")
        {
            results.push((test.to_string(), result_word(result)));
        } else if let Some(last) = results.last_mut()
            && last.1.is_none()
        {
            // The test's own uncaptured output came between its name and its result.
            last.1 = result_word(line);
        }
    }
    let why = |test: &str, result: Option<&str>| -> Outcome {
        match result {
            Some("ok") => Outcome::Ok,
            Some("ignored") => Outcome::Failed("ignored".into()),
            Some(_) => Outcome::Failed(
                failure_reason(output, test).unwrap_or_else(|| "failed (no message)".into()),
            ),
            None => Outcome::Failed(match rc {
                Some(137) => "killed: did not finish within 1200 s".into(),
                Some(rc) => format!("did not finish (test binary exited with {rc})"),
                None => format!("did not finish: the guest stopped: {}", last_words(console)),
            }),
        }
    };
    if results.is_empty() && rc == Some(0) {
        // A test filter (arguments after `--`) that matched nothing here.
        return;
    }
    if aggregate {
        let failed: Vec<String> = results
            .iter()
            .filter_map(|(t, res)| match why(t, *res) {
                Outcome::Failed(w) => Some(format!("{t}: {w}")),
                Outcome::Ok => None,
            })
            .collect();
        let check = format!("{name} ({} tests)", results.len());
        r.push(
            check,
            if !failed.is_empty() {
                Outcome::Failed(failed.join("; "))
            } else if rc != Some(0) {
                Outcome::Failed(format!("no tests ran (exit {rc:?})"))
            } else {
                Outcome::Ok
            },
        );
        return;
    }
    if results.is_empty() {
        r.push(
            format!("{name}: ran"),
            Outcome::Failed(format!("no tests ran (exit {rc:?}): {}", last_line(output))),
        );
    }
    for (test, result) in &results {
        r.push(format!("{name}::{test}"), why(test, *result));
    }
}

fn result_word(s: &str) -> Option<&str> {
    let w = s.split_whitespace().last()?;
    ["ok", "FAILED", "ignored"].contains(&w).then_some(w)
}

/// The message a failed test panicked with (libtest prints it after all tests ran).
fn failure_reason(output: &str, test: &str) -> Option<String> {
    let header = format!("---- {test} stdout ----");
    let body = &output[output.find(&header)? + header.len()..];
    let mut lines = body
        .lines()
        .take_while(|l| !l.starts_with("---- ") && *l != "failures:");
    lines.find(|l| l.contains("panicked at"))?;
    let msg: Vec<&str> = lines
        .take_while(|l| !l.trim().is_empty() && !l.starts_with("note: run with"))
        .map(str::trim)
        .collect();
    let mut msg = msg.join(" / ");
    if msg.len() > 600 {
        let mut cut = 600;
        while !msg.is_char_boundary(cut) {
            cut -= 1;
        }
        msg.truncate(cut);
        msg.push_str(" [...]");
    }
    Some(msg)
}

fn first_problem(log: &str) -> Option<&str> {
    log.lines()
        .find(|l| KERNEL_PROBLEMS.iter().any(|p| l.contains(p)))
        .map(str::trim)
}

fn last_line(s: &str) -> &str {
    s.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim()
}

/// The last console line that is not a progress line: what the guest said last.
fn last_words(console: &str) -> String {
    let line = console
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("no console output");
    line.trim().chars().take(200).collect()
}

/// The markdown table, kernels by checks, then every failure with its reason.
pub fn table(results: &[(String, KernelResult)]) -> String {
    let mut checks: Vec<&str> = Vec::new();
    for (_, r) in results {
        for (c, _) in &r.checks {
            if !checks.contains(&c.as_str()) {
                checks.push(c);
            }
        }
    }
    let mut s = String::from("| check |");
    for (title, _) in results {
        s.push_str(&format!(" {title} |"));
    }
    s.push_str("\n|---|");
    s.push_str(&"---|".repeat(results.len()));
    s.push('\n');
    for c in &checks {
        s.push_str(&format!("| {c} |"));
        for (_, r) in results {
            let cell = match r.checks.iter().find(|(k, _)| k == c) {
                Some((_, Outcome::Ok)) => "ok",
                Some((_, Outcome::Failed(_))) => "**FAIL**",
                None => "-",
            };
            s.push_str(&format!(" {cell} |"));
        }
        s.push('\n');
    }
    let failures: Vec<String> = results
        .iter()
        .flat_map(|(title, r)| {
            r.failures()
                .map(move |(c, why)| format!("- {title}: {c}: {why}"))
        })
        .collect();
    if failures.is_empty() {
        s.push_str("\nEvery check passed on every kernel.\n");
    } else {
        s.push_str("\nFailures:\n");
        for f in failures {
            s.push_str(&f);
            s.push('\n');
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const SERIAL: &str = "\
KMATRIX begin unit
running 2 tests
test btf::tests::a ... ok
test model::b ... ok

test result: ok. 2 passed; 0 failed
KMATRIX end unit rc=0
KMATRIX begin memory
running 3 tests
test heap_growth ... ok
test oom_kill ... FAILED
test sections_select_the_hooks ... SKIPPED: a stray line
ok

failures:

---- oom_kill stdout ----

thread 'oom_kill' (181) panicked at tracer/tests/memory.rs:305:5:
assertion `left == right` failed: the workload was OOM-killed
  left: None
 right: Some(9)
note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace


failures:
    oom_kill

test result: FAILED. 2 passed; 1 failed
KMATRIX end memory rc=101
KMATRIX begin sched
running 2 tests
test slow_one ... ok
test hung_one ... KMATRIX end sched rc=137
KMATRIX dmesg
[    1.0] Linux version 5.10.0
[    3.2] trace type BPF program uses run-time allocation
[    3.3] WARNING: CPU: 1 PID: 103 at kernel/bpf/verifier.c:10493 bpf_check+0x2f92/0x3470
KMATRIX done
";

    fn tests() -> Vec<(String, bool)> {
        vec![
            ("unit".into(), true),
            ("memory".into(), false),
            ("sched".into(), false),
            ("syscalls".into(), false),
        ]
    }

    #[test]
    fn each_test_is_a_check_with_its_reason() {
        let r = analyze("KMATRIX init 5.10\n", SERIAL, &tests());
        let get = |c: &str| {
            r.checks
                .iter()
                .find(|(k, _)| k == c)
                .map(|(_, o)| o.clone())
        };
        assert_eq!(get("guest boots"), Some(Outcome::Ok));
        assert_eq!(get("unit (2 tests)"), Some(Outcome::Ok));
        assert_eq!(get("memory::heap_growth"), Some(Outcome::Ok));
        assert_eq!(get("memory::sections_select_the_hooks"), Some(Outcome::Ok));
        assert_eq!(
            get("memory::oom_kill"),
            Some(Outcome::Failed(
                "assertion `left == right` failed: the workload was OOM-killed / left: None / right: Some(9)".into()
            ))
        );
        assert_eq!(get("sched::slow_one"), Some(Outcome::Ok));
        assert_eq!(
            get("sched::hung_one"),
            Some(Outcome::Failed(
                "killed: did not finish within 1200 s".into()
            ))
        );
        assert!(
            matches!(get("syscalls: ran"), Some(Outcome::Failed(w)) if w.contains("stopped before syscalls"))
        );
        assert_eq!(
            get("kernel log: no warning, oops or BPF complaint"),
            Some(Outcome::Failed(
                "[    3.2] trace type BPF program uses run-time allocation".into()
            ))
        );
    }

    #[test]
    fn a_guest_that_never_reaches_init_fails_at_boot() {
        let console = "[ 3.2] Oops: int3: 0000 [#1] SMP NOPTI\n[ 3.3] Kernel panic - not syncing\n";
        let r = analyze(console, "", &tests());
        assert_eq!(
            r.checks,
            [(
                "guest boots".to_string(),
                Outcome::Failed("[ 3.2] Oops: int3: 0000 [#1] SMP NOPTI".into())
            )]
        );
    }

    #[test]
    fn an_oom_kills_stack_is_not_a_problem_but_a_guest_that_stops_is() {
        let serial = "KMATRIX begin unit\ntest a ... ok\nKMATRIX end unit rc=0\nKMATRIX dmesg\n\
                      [ 9.1] tracer-workload invoked oom-killer: gfp_mask=0xcc0\n[ 9.1] Call Trace:\n";
        let r = analyze("KMATRIX init\n[ 20.0] last words\n", serial, &tests()[..1]);
        assert_eq!(r.checks[1], ("unit (1 tests)".to_string(), Outcome::Ok));
        assert_eq!(
            r.checks[2].1,
            Outcome::Failed("the guest did not finish: [ 20.0] last words".into())
        );
    }

    #[test]
    fn the_table_has_a_column_per_kernel_and_lists_failures() {
        let ok = analyze(
            "KMATRIX init\n",
            "KMATRIX begin unit\ntest x ... ok\nKMATRIX end unit rc=0\nKMATRIX dmesg\nKMATRIX done\n",
            &tests()[..1],
        );
        let bad = analyze("no init\n", "", &tests()[..1]);
        let t = table(&[("5.10".into(), ok), ("6.1".into(), bad)]);
        assert!(
            t.starts_with("| check | 5.10 | 6.1 |\n|---|---|---|\n"),
            "{t}"
        );
        assert!(t.contains("| guest boots | ok | **FAIL** |"), "{t}");
        assert!(t.contains("| unit (1 tests) | ok | - |"), "{t}");
        assert!(
            t.contains("- 6.1: guest boots: no output from /init"),
            "{t}"
        );
    }
}
