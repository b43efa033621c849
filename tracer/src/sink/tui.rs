//! The live view (`--tui`) as a sink: the terminal's life (raw mode and the alternate
//! screen from `start` to the final report, restored on every way out: `q`, a signal, the
//! targets' exit, an error, a panic), the thread that draws, and the one that reads keys.
//!
//! Why threads: the engine's loop must never wait for the terminal, and keys must redraw
//! between reports. A reader thread polls the terminal (crossterm's blocking `poll`/`read`,
//! waking every [`INPUT_POLL`] only to see whether to end) and a view thread owns the
//! state and the terminal, woken by a channel that carries reports, keys and messages; the
//! engine only sends reports. A `q` is sent back over a oneshot the engine waits on
//! ([`Sink::stop_request`]). The view's state and layout are in `render::tui`.
use std::{
    io::{Read as _, Stdout, Write as _},
    os::fd::OwnedFd,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
        mpsc,
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result};
use ratatui::{
    Terminal,
    backend::CrosstermBackend,
    crossterm::{
        cursor, event, execute,
        terminal::{self, EnterAlternateScreen, LeaveAlternateScreen},
    },
};
use tokio::sync::oneshot;

use super::{Sink, own::OwnMeter};
use crate::{
    cli::{Cli, Format},
    model::{ProcessInfo, Report, ReportKind},
    render::{
        self,
        tui::{OutputLine, OutputLines, View},
    },
};

/// How often the key reader looks whether the view has ended.
const INPUT_POLL: Duration = Duration::from_millis(200);
/// The command's output redraws the view at most this often (a chatty command would
/// otherwise redraw it at every write).
const OUTPUT_REDRAW: Duration = Duration::from_millis(100);

enum Msg {
    Report(Box<Report>),
    /// The run has ended: draw it so, and end.
    Final,
    Key(event::Event),
    Say(String),
    /// Lines the launched command wrote, `t_s` after the run began.
    Output {
        who: ProcessInfo,
        t_s: f64,
        lines: Vec<OutputLine>,
    },
}

/// Whether the terminal is in the view's modes (for the panic hook and for each way out).
static ACTIVE: AtomicBool = AtomicBool::new(false);

/// Puts the terminal back as it was: cooked mode (the settings saved when raw mode was
/// entered), the normal screen, the cursor shown. Once, whoever comes first.
fn restore() {
    if ACTIVE.swap(false, Ordering::SeqCst) {
        let _ = terminal::disable_raw_mode();
        let _ = execute!(std::io::stdout(), LeaveAlternateScreen, cursor::Show);
    }
}

fn enter() -> Result<Terminal<CrosstermBackend<Stdout>>> {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        // A panic restores the terminal before it is reported (main's hook: one line).
        let next = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore();
            next(info);
        }));
    });
    terminal::enable_raw_mode().context("cannot put the terminal in raw mode for --tui")?;
    ACTIVE.store(true, Ordering::SeqCst);
    execute!(std::io::stdout(), EnterAlternateScreen, cursor::Hide)
        .context("cannot switch the terminal to its alternate screen")?;
    Terminal::new(CrosstermBackend::new(std::io::stdout())).context("cannot draw on the terminal")
}

pub struct TuiSink {
    interval_s: f64,
    colour: bool,
    tx: Option<mpsc::Sender<Msg>>,
    view: Option<JoinHandle<()>>,
    input: Option<(JoinHandle<()>, Arc<AtomicBool>)>,
    stop: Option<oneshot::Receiver<()>>,
    /// The launched command's output, until `start` gives it to its reader.
    output: Option<(ProcessInfo, OwnedFd, u64)>,
    ended: bool,
}

impl TuiSink {
    pub fn new(cli: &Cli) -> Self {
        TuiSink {
            interval_s: cli.interval.unwrap_or(Duration::from_secs(1)).as_secs_f64(),
            // https://no-color.org: set and not empty.
            colour: std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
            tx: None,
            view: None,
            input: None,
            stop: None,
            output: None,
            ended: false,
        }
    }

    /// Ends the view (drawing the final report first, if there is one), restores the
    /// terminal, and prints the final summary to the normal screen.
    fn end(&mut self, last: Option<&Report>) -> Result<()> {
        if self.ended {
            return Ok(());
        }
        self.ended = true;
        crate::say::route(None);
        // Also without a final report (an error): the view thread ends at this, not when
        // every sender is gone (the key and output readers hold theirs).
        if let Some(tx) = self.tx.take() {
            let _ = tx.send(Msg::Final);
        }
        // A view that panicked (said by the panic hook) makes the run fail, after the summary.
        let crashed = self.view.take().is_some_and(|v| v.join().is_err());
        if let Some((t, done)) = self.input.take() {
            done.store(true, Ordering::SeqCst);
            let _ = t.join();
        }
        restore();
        if let Some(r) = last {
            render::write(&mut std::io::stdout().lock(), Format::Text, r)
                .context("cannot write the report to standard output")?;
        }
        if crashed {
            anyhow::bail!("the live view stopped at an internal error");
        }
        Ok(())
    }
}

impl Drop for TuiSink {
    fn drop(&mut self) {
        let _ = self.end(None);
    }
}

impl Sink for TuiSink {
    fn wants_intervals(&self) -> bool {
        true
    }

    fn wants_aligned_intervals(&self) -> bool {
        false
    }

    fn start(&mut self) -> Result<()> {
        let terminal = enter()?;
        let (tx, rx) = mpsc::channel();
        let (stop_tx, stop_rx) = oneshot::channel();
        let say = tx.clone();
        crate::say::route(Some(Box::new(move |m| {
            let _ = say.send(Msg::Say(m));
        })));
        let done = Arc::new(AtomicBool::new(false));
        let keys = tx.clone();
        let quit = done.clone();
        let input = std::thread::Builder::new()
            .name("tui-input".into())
            .spawn(move || {
                while !quit.load(Ordering::SeqCst) {
                    match event::poll(INPUT_POLL) {
                        Ok(false) => {}
                        Ok(true) => {
                            let sent = event::read().map(|e| keys.send(Msg::Key(e)));
                            if !matches!(sent, Ok(Ok(()))) {
                                break;
                            }
                        }
                        Err(_) => break,
                    }
                }
            })
            .context("cannot start the view's key reader")?;
        if let Some((who, fd, t0_ns)) = self.output.take() {
            let tx = tx.clone();
            // Not joined: it reads until the command and its children close the pipe.
            std::thread::Builder::new()
                .name("tui-output".into())
                .spawn(move || read_output(fd, who, t0_ns, tx))
                .context("cannot start the reader of the command's output")?;
        }
        let view = View::new(self.interval_s, self.colour);
        let view = std::thread::Builder::new()
            .name("tui-view".into())
            .spawn(move || show(terminal, view, rx, stop_tx))
            .context("cannot start the view")?;
        self.tx = Some(tx);
        self.view = Some(view);
        self.input = Some((input, done));
        self.stop = Some(stop_rx);
        Ok(())
    }

    fn write(&mut self, report: &Report) -> Result<()> {
        match report.kind {
            ReportKind::Interval => {
                if let Some(tx) = &self.tx {
                    // A view that has ended (its terminal failed) has asked the run to stop.
                    let _ = tx.send(Msg::Report(Box::new(report.clone())));
                }
                Ok(())
            }
            ReportKind::Final => self.end(Some(report)),
        }
    }

    fn stop_request(&mut self) -> Option<oneshot::Receiver<()>> {
        self.stop.take()
    }

    fn command_output(&mut self, who: &ProcessInfo, out: OwnedFd, t0_ns: u64) -> Option<OwnedFd> {
        self.output = Some((who.clone(), out, t0_ns));
        None
    }
}

/// The command's output, line by line, to the view. Once the view has ended, the rest is
/// read and dropped: the pipe stays open until tracer exits (then the command's writes
/// fail with EPIPE, or SIGPIPE, as with any pipe whose reader has gone).
fn read_output(fd: OwnedFd, who: ProcessInfo, t0_ns: u64, tx: mpsc::Sender<Msg>) {
    let mut f = std::fs::File::from(fd);
    let mut cutter = OutputLines::default();
    let mut buf = vec![0u8; 64 * 1024];
    let mut shown = true;
    let send = |lines: Vec<OutputLine>, shown: &mut bool| {
        if *shown && !lines.is_empty() {
            let t_s = crate::run::monotonic_ns().saturating_sub(t0_ns) as f64 / 1e9;
            *shown = tx
                .send(Msg::Output {
                    who: who.clone(),
                    t_s,
                    lines,
                })
                .is_ok();
        }
    };
    loop {
        match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => send(cutter.feed(&buf[..n]), &mut shown),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    send(cutter.end().into_iter().collect(), &mut shown);
}

/// The view thread: draws at each report, key and message, until the final report (or
/// until the engine is gone). Dropping `stop` on the way out ends the run too.
fn show(
    mut terminal: Terminal<CrosstermBackend<Stdout>>,
    mut view: View,
    rx: mpsc::Receiver<Msg>,
    stop: oneshot::Sender<()>,
) {
    let mut stop = Some(stop);
    let own = OwnMeter::new(false).ok();
    let mut before = own
        .as_ref()
        .map(|o| (Instant::now(), o.measure().cpu_seconds));
    let draw = |t: &mut Terminal<CrosstermBackend<Stdout>>, v: &View| {
        t.draw(|f| render::tui::draw::draw(f, v)).is_ok()
    };
    if !draw(&mut terminal, &view) {
        return;
    }
    let mut drawn = Instant::now();
    // Output came in since the last drawing: drawn at `drawn + OUTPUT_REDRAW` at the latest.
    let mut pending = false;
    loop {
        let msg = if pending {
            match rx.recv_timeout(OUTPUT_REDRAW.saturating_sub(drawn.elapsed())) {
                Ok(m) => Some(m),
                Err(mpsc::RecvTimeoutError::Timeout) => None,
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        } else {
            match rx.recv() {
                Ok(m) => Some(m),
                Err(_) => break,
            }
        };
        let Some(msg) = msg else {
            if !draw(&mut terminal, &view) {
                break;
            }
            (drawn, pending) = (Instant::now(), false);
            continue;
        };
        let redraw = match msg {
            Msg::Output { who, t_s, lines } => {
                for l in &lines {
                    view.output(&who, t_s, l);
                }
                pending = true;
                drawn.elapsed() >= OUTPUT_REDRAW
            }
            Msg::Report(r) => {
                // For the test that a panic restores the terminal (tests/tui.rs): a view
                // asked to fail at its first report.
                if std::env::var_os("TRACER_TEST_VIEW_PANIC").is_some() {
                    panic!("the view was asked to fail (TRACER_TEST_VIEW_PANIC)");
                }
                view.add(&r);
                if let (Some(o), Some((t, cpu))) = (own.as_ref(), before) {
                    let cost = o.measure();
                    let wall = t.elapsed().as_secs_f64();
                    view.own.cpu_pct =
                        (wall > 0.0).then(|| 100.0 * (cost.cpu_seconds - cpu) / wall);
                    view.own.rss_bytes = cost.rss_bytes;
                    before = Some((Instant::now(), cost.cpu_seconds));
                }
                true
            }
            Msg::Final => {
                view.finished = true;
                let _ = draw(&mut terminal, &view);
                break;
            }
            Msg::Say(m) => {
                view.say(m);
                true
            }
            Msg::Key(event::Event::Key(k)) if k.kind != event::KeyEventKind::Release => {
                match view.key(k) {
                    render::tui::Action::Quit => {
                        if let Some(s) = stop.take() {
                            let _ = s.send(());
                        }
                        false
                    }
                    render::tui::Action::Repaint => terminal.clear().is_ok(),
                    render::tui::Action::Redraw => true,
                    render::tui::Action::None => false,
                }
            }
            Msg::Key(event::Event::Resize(..)) => true,
            Msg::Key(_) => false,
        };
        if redraw {
            if !draw(&mut terminal, &view) {
                break;
            }
            (drawn, pending) = (Instant::now(), false);
        }
    }
    let _ = terminal.show_cursor();
    let _ = std::io::stdout().flush();
}
