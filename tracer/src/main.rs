//! tracer's binary: the program is the library's (`lib.rs`), which the fuzz targets
//! (`fuzz/`) use too.
use std::process::ExitCode;

// The library builds without the eBPF object (the fuzz targets need none); the binary
// needs it.
#[cfg(tracer_missing_ebpf)]
compile_error!("the eBPF object is not built: run `cargo xtask build` (it builds it first)");

fn main() -> ExitCode {
    tracer::main()
}
