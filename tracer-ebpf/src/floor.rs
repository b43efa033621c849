//! Empty programs on the same hooks as the real ones: what merely attaching costs. Used only
//! by the benchmark (`tracer --bench-floor`) to measure the floor tracer is compared with.
use aya_ebpf::{macros::raw_tracepoint, programs::RawTracePointContext};

#[raw_tracepoint(tracepoint = "sys_enter")]
pub fn floor_enter(_ctx: RawTracePointContext) -> i32 {
    0
}

#[raw_tracepoint(tracepoint = "sys_exit")]
pub fn floor_exit(_ctx: RawTracePointContext) -> i32 {
    0
}

#[raw_tracepoint(tracepoint = "rss_stat")]
pub fn floor_rss_stat(_ctx: RawTracePointContext) -> i32 {
    0
}

#[raw_tracepoint(tracepoint = "mark_victim")]
pub fn floor_oom(_ctx: RawTracePointContext) -> i32 {
    0
}
