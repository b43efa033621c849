//! tracer: what one process is doing to the operating system, live, with eBPF. The
//! binary (`main.rs`) calls [`main`]; the fuzz targets (`fuzz/`) call the decoders of the
//! kernel's records ([`strace`]).
//!
//! Flow: `cli` -> `target` (what to trace) -> `probes` (load + attach) -> `collect` (read
//! maps) -> `model` (pure numbers) -> `sink`s (`render`: text | json). `run` sets up,
//! `engine` drives the run and hands each report to the sinks.
mod btf;
mod cli;
mod collect;
mod compare;
mod engine;
mod model;
mod output;
mod probes;
mod render;
mod run;
mod say;
mod select;
mod sink;
mod target;
#[cfg(test)]
mod testing;

/// strace mode's decoding of the call stream's records, and `-y`'s parsers: public for
/// the fuzz targets.
pub use model::strace;

use std::process::ExitCode;

/// The program: `tracer compare`, or a run; what the binary (`main.rs`) calls.
pub fn main() -> ExitCode {
    // A bug must still be one plain line, not a backtrace.
    std::panic::set_hook(Box::new(|info| {
        let msg = info.to_string().replace('\n', " ");
        eprintln!("tracer: internal error: {}", render::term::printable(&msg));
    }));
    // `tracer compare BEFORE AFTER`: recordings, no tracing.
    let mut args = std::env::args_os();
    if args.nth(1).is_some_and(|a| a == "compare") {
        return compare::main(args.collect());
    }
    let (cli, mode) = match cli::parse() {
        Ok(v) => v,
        Err(code) => return code,
    };
    match run::run(cli, mode) {
        Ok(code) => code,
        Err(e) => {
            // One line, whatever the message quotes (a process's name, a path).
            let msg = format!("{e:#}").replace('\n', " ");
            eprintln!("tracer: {}", render::term::printable(&msg));
            ExitCode::from(1)
        }
    }
}
