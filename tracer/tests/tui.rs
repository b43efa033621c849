//! `tracer --tui` end to end, in a real terminal: tmux (Debian's package, installed by
//! `cargo xtask test`) gives tracer a pseudo-terminal of a fixed size; `capture-pane`
//! reads what is on it. The view must show the workload's exact counts, reorder them on a
//! sort key, and on `q` (or a signal, or its targets' exit) put the terminal back as it was
//! (`stty -g` before and after equal) and print the final summary on the normal screen.
mod common;

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use common::*;

const GETPPID: u64 = 3000;
const WRITES: u64 = 200;
const MISSING_OPENS: u64 = 10;

/// A tmux server of our own (its own socket), with one session running a shell command.
struct Tmux {
    sock: PathBuf,
    dir: PathBuf,
}

impl Tmux {
    /// Runs `tracer --tui ARGS -- tracer-workload linger SECS ...` in a 160x50 terminal,
    /// with the terminal's settings saved before and after, and its exit status.
    fn start(name: &str, tui_args: &str, linger_s: u64) -> Option<Tmux> {
        Tmux::start_cmd(
            name,
            "",
            tui_args,
            &format!("{WORKLOAD} linger {linger_s} {GETPPID} {WRITES} {MISSING_OPENS}"),
            None,
        )
    }

    /// Runs `tracer --tui ARGS -- CMD`, or with `script`, `-- sh SCRIPT` (the script's text
    /// written to a file first); `env`: `NAME=VALUE ...` for tracer, or empty.
    fn start_cmd(
        name: &str,
        env: &str,
        tui_args: &str,
        cmd: &str,
        script: Option<&str>,
    ) -> Option<Tmux> {
        if which("tmux").is_none() {
            skip("tmux is not installed (cargo xtask test installs Debian's tmux)");
            return None;
        }
        let dir = std::env::temp_dir().join(format!("tracer-tui-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let d = dir.display();
        let cmd = match script {
            Some(text) => {
                std::fs::write(dir.join("cmd.sh"), text).unwrap();
                format!("sh {d}/cmd.sh")
            }
            None => cmd.to_string(),
        };
        let script = format!(
            "stty -g > {d}/before; env {env} {TRACER} --tui {tui_args} -- {cmd} 2> {d}/stderr; \
             echo $? > {d}/rc; stty -g > {d}/after; exec sleep 600"
        );
        let t = Tmux {
            sock: dir.join("tmux.sock"),
            dir,
        };
        let ok = t
            .tmux()
            .args([
                "new-session",
                "-d",
                "-s",
                "t",
                "-x",
                "160",
                "-y",
                "50",
                "sh",
                "-c",
                &script,
            ])
            .status()
            .unwrap()
            .success();
        assert!(ok, "tmux did not start");
        Some(t)
    }

    fn tmux(&self) -> Command {
        let mut c = Command::new("tmux");
        c.arg("-f").arg("/dev/null").arg("-S").arg(&self.sock);
        c.stdin(Stdio::null());
        c
    }

    /// The screen now (`all`: with the history scrolled off it).
    fn capture(&self, all: bool) -> String {
        let mut c = self.tmux();
        c.args(["capture-pane", "-p", "-t", "t"]);
        if all {
            c.args(["-S", "-"]);
        }
        String::from_utf8_lossy(&c.output().unwrap().stdout).into_owned()
    }

    fn keys(&self, keys: &[&str]) {
        let ok = self
            .tmux()
            .args(["send-keys", "-t", "t"])
            .args(keys)
            .status()
            .unwrap()
            .success();
        assert!(ok);
    }

    /// Waits until the screen passes `ok` (panics with it after 20 s).
    fn wait_for(&self, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let s = self.capture(false);
            if ok(&s) {
                return s;
            }
            if start.elapsed() > Duration::from_secs(20) {
                panic!("{what} did not appear; the screen:\n{s}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits for the tracer command to end; its exit status.
    fn wait_exit(&self) -> String {
        let rc = self.dir.join("rc");
        let start = Instant::now();
        while !self.dir.join("after").exists() {
            if start.elapsed() > Duration::from_secs(20) {
                panic!("tracer did not end; the screen:\n{}", self.capture(true));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        std::thread::sleep(Duration::from_millis(100));
        std::fs::read_to_string(rc).unwrap().trim().to_string()
    }

    fn file(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.join(name)).unwrap()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.tmux().arg("kill-server").status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn which(cmd: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(cmd))
        .find(|p| p.is_file())
}

/// The syscall names of the view's table, top to bottom, and its header line.
fn table(screen: &str) -> (Vec<String>, String) {
    let lines: Vec<&str> = screen.lines().collect();
    let Some(h) = lines
        .iter()
        .position(|l| l.contains("syscall") && l.contains("calls/s"))
    else {
        return (Vec::new(), String::new());
    };
    let names = lines[h + 1..]
        .iter()
        .take_while(|l| !l.starts_with('└'))
        .filter_map(|l| {
            let inner = l.split('│').nth(1)?;
            inner
                .split_whitespace()
                .find(|w| *w != ">")
                .map(str::to_string)
        })
        .collect();
    (names, lines[h].to_string())
}

/// The words of the view's row for `name`.
fn view_row(screen: &str, name: &str) -> Vec<String> {
    screen
        .lines()
        .filter_map(|l| l.split('│').nth(1))
        .map(|cell| {
            cell.split_whitespace()
                .filter(|w| *w != ">")
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .find(|w| w.first().is_some_and(|n| n == name))
        .unwrap_or_default()
}

/// The final summary's row for `name` (the text report's table).
fn summary_row(text: &str, name: &str) -> Vec<String> {
    let start = text.find(": summary of ").expect("no final summary");
    text[start..]
        .lines()
        .map(|l| l.split_whitespace().map(str::to_string).collect::<Vec<_>>())
        .find(|w| w.first().is_some_and(|n| n == name))
        .unwrap_or_default()
}

/// The workload's pid, from the summary's title (`=== PID (tracer-workload): summary`).
fn workload_pid(text: &str) -> i32 {
    let line = text.lines().find(|l| l.contains(": summary of ")).unwrap();
    line.trim_start_matches("=== ")
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

fn check_summary(t: &Tmux) -> String {
    let all = t.capture(true);
    assert_eq!(t.file("before"), t.file("after"), "stty -g differs:\n{all}");
    let getppid = summary_row(&all, "getppid");
    assert_eq!(getppid.get(1).map(String::as_str), Some("3000"), "{all}");
    let write = summary_row(&all, "write");
    assert_eq!(write.get(1).map(String::as_str), Some("200"), "{all}");
    // The view was on the alternate screen: nothing of it is left on the normal one.
    assert!(!all.contains("processes and threads"), "{all}");
    all
}

#[test]
fn the_view_counts_exactly_sorts_and_quits_restoring_the_terminal() {
    let Some(_g) = ebpf_test() else { return };
    let Some(t) = Tmux::start("keys", "--interval 0.5", 60) else {
        return;
    };
    // Calls since the start: exactly what the workload made, once a report has all of
    // them (a report may end between its getppid calls and its writes).
    let calls = |s: &str, name: &str| view_row(s, name).get(1).cloned();
    let screen = t.wait_for("the workload's getppid and write calls", |s| {
        calls(s, "getppid").as_deref() == Some("3000")
            && calls(s, "write").as_deref() == Some("200")
    });
    let (names, head) = table(&screen);
    assert_eq!(
        names.first().map(String::as_str),
        Some("getppid"),
        "{screen}"
    );
    assert!(head.contains("calls/s↓"), "{head}");
    assert!(
        screen.contains("tracer: tracing"),
        "the message is in the view: {screen}"
    );

    // Reversed: getppid, the most calls, last.
    t.keys(&["r"]);
    let screen = t.wait_for("the reversed table", |s| table(s).1.contains("calls/s↑"));
    let (reversed, _) = table(&screen);
    assert_eq!(
        reversed.last().map(String::as_str),
        Some("getppid"),
        "{screen}"
    );
    assert_eq!(reversed.len(), names.len(), "{screen}");

    // Two columns left: by name, ascending.
    t.keys(&["<", "<"]);
    let screen = t.wait_for("the table by name", |s| table(s).1.contains("syscall↓"));
    let (by_name, _) = table(&screen);
    let mut sorted = by_name.clone();
    sorted.sort();
    assert_eq!(by_name, sorted, "{screen}");
    assert!(by_name.len() > 5, "{screen}");

    t.keys(&["q"]);
    // A command still running when tracer stops is left running: tracer exits 0.
    assert_eq!(t.wait_exit(), "0");
    let all = check_summary(&t);
    // SAFETY: kill has no memory preconditions; the pid is the workload's, still running.
    unsafe { libc::kill(workload_pid(&all), libc::SIGKILL) };
}

#[test]
fn the_view_ends_with_its_targets_and_restores_the_terminal() {
    let Some(_g) = ebpf_test() else { return };
    let Some(t) = Tmux::start("exit", "", 2) else {
        return;
    };
    // The workload lingers 2 s, then exits: so does tracer, with its status.
    assert_eq!(t.wait_exit(), "0");
    let all = check_summary(&t);
    assert!(all.contains("command (pid"), "{all}");
    assert!(all.contains("exited with code 0"), "{all}");
}

#[test]
fn sigterm_restores_the_terminal() {
    let Some(_g) = ebpf_test() else { return };
    let Some(t) = Tmux::start("term", "", 60) else {
        return;
    };
    t.wait_for("the view", |s| view_row(s, "getppid").get(1).is_some());
    // tracer's pid: the process running TRACER with --tui in this session's terminal.
    let tracer_pid = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .find(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
                let args: Vec<&[u8]> = c.split(|&b| b == 0).collect();
                args.first() == Some(&TRACER.as_bytes())
                    && args.contains(&&b"--tui"[..])
                    && args.contains(&&b"60"[..])
            })
        })
        .expect("tracer's pid");
    // SAFETY: kill has no memory preconditions.
    unsafe { libc::kill(tracer_pid, libc::SIGTERM) };
    assert_eq!(t.wait_exit(), "0");
    let all = check_summary(&t);
    // SAFETY: as above; the workload is still running.
    unsafe { libc::kill(workload_pid(&all), libc::SIGKILL) };
}

#[test]
fn ctrl_c_restores_the_terminal() {
    let Some(_g) = ebpf_test() else { return };
    let Some(t) = Tmux::start("ctrlc", "", 60) else {
        return;
    };
    t.wait_for("the view", |s| view_row(s, "getppid").get(1).is_some());
    // In raw mode Ctrl-C is a key, not SIGINT: it quits like q.
    t.keys(&["C-c"]);
    assert_eq!(t.wait_exit(), "0");
    let all = check_summary(&t);
    // SAFETY: kill has no memory preconditions; the workload is still running.
    unsafe { libc::kill(workload_pid(&all), libc::SIGKILL) };
}

/// A bug in the view (a panic, asked for through TRACER_TEST_VIEW_PANIC) restores the
/// terminal before it is said (a line, then a line saying the view stopped); the run
/// stops, prints its summary, and fails.
#[test]
fn a_panic_in_the_view_restores_the_terminal() {
    let Some(_g) = ebpf_test() else { return };
    let Some(t) = Tmux::start_cmd(
        "panic",
        "TRACER_TEST_VIEW_PANIC=1",
        "--interval 0.5",
        &format!("{WORKLOAD} linger 2 {GETPPID} {WRITES} {MISSING_OPENS}"),
        None,
    ) else {
        return;
    };
    assert_eq!(t.wait_exit(), "1");
    let all = check_summary(&t);
    let err = t.file("stderr");
    let lines: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("internal error"))
        .collect();
    assert!(
        lines.len() == 2 && lines[0].contains("the view was asked to fail"),
        "{err}\n{all}"
    );
    assert!(
        err.contains("tracer: the live view stopped at an internal error"),
        "{err}"
    );
    // SAFETY: kill has no memory preconditions; the workload may still be lingering.
    unsafe { libc::kill(workload_pid(&all), libc::SIGKILL) };
}

/// Every line of the view's screen is its header (two lines), a pane's (between its
/// borders) or its footer: nothing written over it.
fn inside_the_frame(screen: &str) {
    let lines: Vec<&str> = screen.lines().collect();
    assert_eq!(lines.len(), 50, "{screen}");
    assert!(lines[0].starts_with("tracer "), "{screen}");
    assert!(lines[1].starts_with("showing: all targets"), "{screen}");
    assert!(lines[49].starts_with("q quit"), "{screen}");
    for l in &lines[2..49] {
        let first = l.chars().next();
        let last = l.chars().last();
        assert!(
            matches!(first, Some('┌' | '│' | '└')) && matches!(last, Some('┐' | '│' | '┘')),
            "a line outside the view's frame: {l:?}\n{screen}"
        );
    }
}

/// The event log's lines of the command's output (`+T output  PID (sh): TEXT`): TEXT.
fn output_lines(screen: &str) -> Vec<String> {
    screen
        .lines()
        .filter_map(|l| {
            let at = l.find(" output  ")?;
            let text = l[at..].split_once(" (sh): ")?.1;
            Some(text.trim_end_matches([' ', '│']).to_string())
        })
        .collect()
}

/// Runs `tracer --tui -- sh SCRIPT`, waits for `lines` lines of its output in the view's
/// log, checks that nothing was written over the view, and gives those lines, the screen
/// and the session (its exit waited for).
fn shown_output(name: &str, script: &str, lines: usize) -> Option<(Vec<String>, String, Tmux)> {
    let t = Tmux::start_cmd(name, "", "", "", Some(script))?;
    let screen = t.wait_for("the command's output in the log", |s| {
        output_lines(s).len() == lines
    });
    inside_the_frame(&screen);
    // The script ends after its sleep, and tracer with it.
    assert_eq!(t.wait_exit(), "0");
    Some((output_lines(&screen), screen, t))
}

#[test]
fn a_launched_commands_output_is_shown_in_the_log_not_over_the_view() {
    let Some(_g) = ebpf_test() else { return };
    // Its stdin is /dev/null: `read` ends at once (1: end of file), not waiting for keys.
    let script = "echo hello-from-cmd\nread line; echo stdin-eof-$?\necho to-stderr >&2\nsleep 3\n";
    let Some((lines, screen, t)) = shown_output("output", script, 3) else {
        return;
    };
    assert_eq!(
        lines,
        ["hello-from-cmd", "stdin-eof-1", "to-stderr"],
        "{screen}"
    );
    assert_eq!(screen.matches("hello-from-cmd").count(), 1, "{screen}");
    let all = t.capture(true);
    assert_eq!(t.file("before"), t.file("after"), "stty -g differs:\n{all}");
    assert!(all.contains("(sh): summary of "), "{all}");
    assert!(all.contains("exited with code 0"), "{all}");
    // Nothing of it reached the terminal (the normal screen keeps what is written there).
    assert!(!all.contains("hello-from-cmd"), "{all}");
    assert!(!all.contains("to-stderr"), "{all}");
}

#[test]
fn a_launched_commands_escape_sequences_are_shown_escaped() {
    let Some(_g) = ebpf_test() else { return };
    let script = "printf 'esc-\\033[31mred\\033[2J-end\\n'\nsleep 3\n";
    let Some((lines, screen, _t)) = shown_output("escape", script, 1) else {
        return;
    };
    assert_eq!(lines, ["esc-\\33[31mred\\33[2J-end"], "{screen}");
}

#[test]
fn without_a_terminal_it_says_so_in_one_line() {
    // No privileges needed: the command line is checked first.
    let out = run(tracer().args(["--tui", "--", "true"]));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(
        err,
        "tracer: --tui needs a terminal, and standard output is not one (see tracer --help)\n"
    );
    assert!(out.stdout.is_empty());
}
