//! Tables indexed by thread or process id whose size does not follow `pid_max` (4194304
//! on most systemd machines: a per-id array of 32-byte entries would take 128 MiB of
//! kernel memory). Each id has a set of [`WAYS`] entries, `set_base(id)..+WAYS`; an entry
//! carries the id that owns it. With `pid_max <= MAX_ENTRIES` no set can be full: at most
//! `WAYS` ids below `pid_max` share a set. Above, a set is full only when `WAYS + 1` live
//! traced ids are congruent modulo the number of sets; the kernel side counts what it then
//! cannot record (`Drop::ThreadTableFull`).

/// Entries per set.
pub const WAYS: u32 = 4;
/// Entries per table at most.
pub const MAX_ENTRIES: u32 = 1 << 16;

/// Entries of a table for ids below `pid_max`: the next power of two, from `WAYS` to
/// `MAX_ENTRIES`.
pub const fn entries(pid_max: u32) -> u32 {
    let n = if pid_max <= WAYS {
        WAYS
    } else {
        pid_max.next_power_of_two()
    };
    if n > MAX_ENTRIES { MAX_ENTRIES } else { n }
}

/// The first entry of `id`'s set in a table of `entries` (a power of two, at least `WAYS`).
#[inline(always)]
pub const fn set_base(id: u32, entries: u32) -> u32 {
    (id & (entries / WAYS - 1)) * WAYS
}

/// An entry that says which id owns it (0: none; ids 0 are never traced).
pub trait Tagged {
    fn tag(&self) -> u32;
}

/// The index of `id`'s entry among the `WAYS` tags of its set, else of the first entry
/// `free` accepts; None when neither exists. Userspace's placement, the same as the kernel
/// side's.
pub fn place<T: Tagged>(set: &[T], id: u32, free: impl Fn(&T) -> bool) -> Option<usize> {
    set.iter()
        .position(|e| e.tag() == id)
        .or_else(|| set.iter().position(free))
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;

    #[test]
    fn ids_below_pid_max_never_overflow_a_set() {
        for pid_max in [1, 4, 5, 1000, 32768, 65536] {
            let n = entries(pid_max);
            assert!(n >= pid_max && n.is_power_of_two() && n >= WAYS);
            let mut load = std::collections::HashMap::<u32, u32>::new();
            for id in 0..pid_max {
                *load.entry(set_base(id, n)).or_default() += 1;
            }
            assert!(load.values().all(|&l| l <= WAYS), "pid_max {pid_max}");
            assert!(load.keys().all(|&b| b + WAYS <= n));
        }
        assert_eq!(entries(4_194_304), MAX_ENTRIES);
    }

    struct E(u32, bool);
    impl Tagged for E {
        fn tag(&self) -> u32 {
            self.0
        }
    }

    #[test]
    fn an_id_finds_its_own_entry_before_a_free_one() {
        let set = [E(0, true), E(7, false), E(9, false), E(0, true)];
        assert_eq!(place(&set, 9, |e| e.1), Some(2));
        assert_eq!(place(&set, 5, |e| e.1), Some(0));
        let full = [E(1, false), E(2, false), E(3, false), E(4, false)];
        assert_eq!(place(&full, 5, |e| e.1), None);
    }
}
