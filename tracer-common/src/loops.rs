//! Event loops (issue 15): threads that loop on a wait for events (`epoll_wait`,
//! `epoll_pwait`, `epoll_pwait2`, `poll`, `ppoll`, `select`, `pselect6`: node, nginx,
//! redis, python's asyncio). An iteration is the time from the return of one wait to the
//! entry of the next: the time the loop was busy and could serve nothing else. Each loop
//! thread has its own [`LoopState`] in [`super::maps::LOOPS`]; an iteration longer than
//! [`LoopConfig::stall_ns`] is a stall, sent as an [`super::event::Stall`].
use crate::hist;

/// x86_64 numbers of the waits that make a thread a loop thread.
pub const WAITS: [u32; 7] = [7, 23, 232, 270, 271, 281, 441];

/// Whether x86_64 syscall `nr` is one of [`WAITS`]. Compares, not a table: a bitmap in
/// .rodata indexed by the number is refused by old verifiers, whose bounds of the shifted
/// index reach past it.
#[inline(always)]
pub fn is_wait(nr: u32) -> bool {
    matches!(nr, 7 | 23 | 232 | 270 | 271 | 281 | 441)
}

/// Set by userspace at load time ([`super::globals::LOOP_CONFIG`]).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LoopConfig {
    /// 1 to follow loop threads (the syscalls section).
    pub enabled: u32,
    pub _pad: u32,
    /// An iteration at least this long is a stall (`--stall`).
    pub stall_ns: u64,
}

/// Loop threads followed at once; beyond, the least recently active is forgotten. An
/// entry is 1.4 KiB with its histogram (the LRU is preallocated: 1.4 MiB).
pub const MAX_LOOPS: u32 = 1024;

/// A loop thread, by tid.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoopState {
    pub tgid: u32,
    pub slot: u32,
    /// When its latest wait returned; 0 while it waits.
    pub since_ns: u64,
    /// Its on-CPU time (`se.sum_exec_runtime`) and run-queue time
    /// (`sched_info.run_delay`) then, as the kernel accounts them (updated at ticks and
    /// switches: within a tick of the truth).
    pub cpu_at_ns: u64,
    pub delay_at_ns: u64,
    /// Syscalls made since then (the wait excluded), and the slowest of those timed.
    pub calls: u32,
    pub slow_nr: u32,
    pub slow_ns: u64,
    /// Cumulative: iterations ended, their time, the longest, stalls, and the histogram.
    pub iterations: u64,
    pub busy_ns: u64,
    pub busy_max_ns: u64,
    pub stalls: u64,
    pub hist: [u64; hist::BUCKETS],
}
const _: () = assert!(core::mem::size_of::<LoopState>() == 80 + 8 * hist::BUCKETS);

impl Default for LoopState {
    fn default() -> Self {
        Self {
            tgid: 0,
            slot: 0,
            since_ns: 0,
            cpu_at_ns: 0,
            delay_at_ns: 0,
            calls: 0,
            slow_nr: 0,
            slow_ns: 0,
            iterations: 0,
            busy_ns: 0,
            busy_max_ns: 0,
            stalls: 0,
            hist: [0; hist::BUCKETS],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_are_told_from_the_rest() {
        for nr in 0..600 {
            assert_eq!(is_wait(nr), WAITS.contains(&nr), "{nr}");
        }
    }
}
