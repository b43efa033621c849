//! Which processes are traced. Checked first by every hook so that untraced processes
//! leave at once: one inlined array lookup, no helper call.
use aya_ebpf::{
    macros::map,
    maps::{Array, PerCpuArray},
};
use tracer_common::Drop;

/// Indexed by tgid: 0 = not traced, otherwise the target's slot + 1. Sized to pid_max by
/// userspace at load time.
#[map(name = "TARGETS")]
pub static TARGETS: Array<u32> = Array::with_max_entries(1, 0);

/// What could not be recorded, by [`Drop`] kind.
#[map(name = "DROPS")]
static DROPS: PerCpuArray<u64> = PerCpuArray::with_max_entries(tracer_common::DROP_KINDS, 0);

/// The target slot of a process, if it is traced.
#[inline(always)]
pub fn target_slot(tgid: u32) -> Option<u32> {
    match TARGETS.get(tgid) {
        Some(&v) if v != 0 => Some(v - 1),
        _ => None,
    }
}

/// Counts something the kernel side failed to record, so that userspace can show it.
#[inline(always)]
pub fn count_drop(kind: Drop) {
    if let Some(p) = DROPS.get_ptr_mut(kind as u32) {
        // SAFETY: a per-CPU slot; programs on one CPU do not run concurrently.
        unsafe { *p += 1 };
    }
}
