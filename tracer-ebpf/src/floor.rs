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

#[raw_tracepoint(tracepoint = "task_newtask")]
pub fn floor_newtask(_ctx: RawTracePointContext) -> i32 {
    0
}

#[raw_tracepoint(tracepoint = "sched_switch")]
pub fn floor_switch(_ctx: RawTracePointContext) -> i32 {
    0
}

#[raw_tracepoint(tracepoint = "sched_wakeup")]
pub fn floor_wakeup(_ctx: RawTracePointContext) -> i32 {
    0
}

#[raw_tracepoint(tracepoint = "sched_wakeup_new")]
pub fn floor_wake_new(_ctx: RawTracePointContext) -> i32 {
    0
}

#[raw_tracepoint(tracepoint = "task_rename")]
pub fn floor_rename(_ctx: RawTracePointContext) -> i32 {
    0
}

#[raw_tracepoint(tracepoint = "sched_process_fork")]
pub fn floor_fork(_ctx: RawTracePointContext) -> i32 {
    0
}

#[raw_tracepoint(tracepoint = "sched_process_exec")]
pub fn floor_exec(_ctx: RawTracePointContext) -> i32 {
    0
}

#[raw_tracepoint(tracepoint = "sched_process_exit")]
pub fn floor_pexit(_ctx: RawTracePointContext) -> i32 {
    0
}

#[raw_tracepoint(tracepoint = "signal_generate")]
pub fn floor_signal(_ctx: RawTracePointContext) -> i32 {
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

#[raw_tracepoint(tracepoint = "cgroup_attach_task")]
pub fn floor_cgroup(_ctx: RawTracePointContext) -> i32 {
    0
}

/// The second program on a hook whose real programs are two (see `crate::twin`).
#[raw_tracepoint(tracepoint = "task_newtask")]
pub fn floor_newtask2(_ctx: RawTracePointContext) -> i32 {
    0
}

/// The second program on a hook whose real programs are two (see `crate::twin`).
#[raw_tracepoint(tracepoint = "sched_process_fork")]
pub fn floor_fork2(_ctx: RawTracePointContext) -> i32 {
    0
}

/// The second program on a hook whose real programs are two (see `crate::twin`).
#[raw_tracepoint(tracepoint = "sched_process_exec")]
pub fn floor_exec2(_ctx: RawTracePointContext) -> i32 {
    0
}

/// The second program on a hook whose real programs are two (see `crate::twin`).
#[raw_tracepoint(tracepoint = "sched_process_exit")]
pub fn floor_pexit2(_ctx: RawTracePointContext) -> i32 {
    0
}

/// The second program on a hook whose real programs are two (see `crate::twin`).
#[raw_tracepoint(tracepoint = "signal_generate")]
pub fn floor_signal2(_ctx: RawTracePointContext) -> i32 {
    0
}

/// The second program on a hook whose real programs are two (see `crate::twin`).
#[raw_tracepoint(tracepoint = "cgroup_attach_task")]
pub fn floor_cgroup2(_ctx: RawTracePointContext) -> i32 {
    0
}

/// The second program on a hook whose real programs are two (see `crate::twin`).
#[raw_tracepoint(tracepoint = "task_rename")]
pub fn floor_rename2(_ctx: RawTracePointContext) -> i32 {
    0
}
