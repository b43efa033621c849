//! Thread roles where the behaviour shows them (issue 15, with `--threads`): the main
//! thread, event loops (threads that wait in epoll/poll/select), and pools: threads of a
//! process that wait for work on the same condition variable (libuv's threadpool, a
//! server's workers), with the pool's utilisation, the share of its threads' time spent
//! with work (not waiting for it). Pure.
use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::sched::ThreadRow;

/// A pool at or above this utilisation is saturated: its work waits for a free thread.
/// Below 1 because what a pool thread does between tasks, and the waits glibc makes with
/// `FUTEX_WAIT_BITSET` besides its condition variables' (rwlocks, semaphores: OpenSSL's
/// locks in node's crypto), count as waiting for work: node's libuv pool, 128 pbkdf2 on
/// 4 threads and 2 CPUs, measured 0.91-1.00 in the 0.2 s windows of its busy time (a
/// window that holds its start or its drain reads lower: 0.71-0.75).
pub const SATURATED: f64 = 0.8;

/// What a thread does, as its behaviour shows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The process's main thread (its id is the process's).
    Main,
    /// The main thread, looping on a wait.
    MainEventLoop,
    /// Another thread looping on a wait.
    EventLoop,
    /// One of a pool: threads waiting for work on one condition variable.
    PoolWorker,
    /// A thread waiting for work on a condition variable of its own.
    Worker,
    #[default]
    Other,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Main => "main",
            Role::MainEventLoop => "main, event loop",
            Role::EventLoop => "event loop",
            Role::PoolWorker => "pool worker",
            Role::Worker => "worker",
            Role::Other => "-",
        }
    }
}

/// A pool of threads in a report window.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PoolRow {
    pub pid: u32,
    /// Its threads, by id.
    pub tids: Vec<u32>,
    /// Their time in the window, and of it the time with work: on a CPU, waiting for one,
    /// or blocked on something other than waiting for work.
    pub wall_ns: u64,
    pub busy_ns: u64,
    /// `busy_ns / wall_ns`.
    pub utilisation: f64,
    /// At or above [`SATURATED`].
    pub saturated: bool,
}

/// The futex word that tells a thread's pool: that of its longest condition wait (`longest`,
/// `longest_ns`, ended waits, from the kernel), or of the one it is in (`latest`, for
/// `waiting_ns` so far) if that is longer, or the only one: an idle pool thread may have
/// waited for work since it started. The longest, not the latest: a busy pool thread
/// seldom waits for work, and its latest wait may be a short one on a lock its pool shares
/// (glibc waits on rwlocks and semaphores as on condition variables).
pub fn pool_word(longest: u64, longest_ns: u64, latest: u64, waiting_ns: u64) -> u64 {
    if waiting_ns > longest_ns || longest == 0 {
        latest
    } else {
        longest
    }
}

/// A thread's time with work: all but its waits for work.
fn busy(t: &ThreadRow) -> u64 {
    t.wall_ns.saturating_sub(t.blocked_by.waiting_for_work_ns)
}

/// Gives each thread its role and returns the pools, most utilised first. `cond`: each
/// thread's [`pool_word`] (0 or absent: none); `loops`: the threads
/// that loop on a wait.
pub fn assign(
    threads: &mut [ThreadRow],
    cond: &BTreeMap<u32, u64>,
    loops: &BTreeSet<u32>,
) -> Vec<PoolRow> {
    // Waiters on one condition variable: one of its two 4-byte words (glibc), so the
    // same 16-byte granule.
    let mut by_cond: BTreeMap<(u32, u64), Vec<usize>> = BTreeMap::new();
    for (i, t) in threads.iter_mut().enumerate() {
        let looping = loops.contains(&t.tid);
        t.role = match (t.tid == t.pid, looping) {
            (true, true) => Role::MainEventLoop,
            (true, false) => Role::Main,
            (false, true) => Role::EventLoop,
            (false, false) => Role::Other,
        };
        let word = cond.get(&t.tid).copied().unwrap_or(0);
        // Its longest condition wait may be before the window: a busy pool thread need not
        // wait in every window.
        if t.role == Role::Other && word != 0 {
            by_cond.entry((t.pid, word & !15)).or_default().push(i);
        }
    }
    let mut pools = Vec::new();
    for ((pid, _), members) in by_cond {
        if members.len() < 2 {
            threads[members[0]].role = Role::Worker;
            continue;
        }
        let (mut wall, mut work) = (0, 0);
        let mut tids = Vec::new();
        for &i in &members {
            let t = &mut threads[i];
            t.role = Role::PoolWorker;
            wall += t.wall_ns;
            work += busy(t);
            tids.push(t.tid);
        }
        tids.sort_unstable();
        let utilisation = if wall > 0 {
            work as f64 / wall as f64
        } else {
            0.0
        };
        pools.push(PoolRow {
            pid,
            tids,
            wall_ns: wall,
            busy_ns: work,
            utilisation,
            saturated: utilisation >= SATURATED,
        });
    }
    pools.sort_by(|a, b| {
        b.utilisation
            .total_cmp(&a.utilisation)
            .then(a.tids.cmp(&b.tids))
    });
    pools
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::blocked::BlockedBy;

    fn thread(tid: u32, wall: u64, idle: u64) -> ThreadRow {
        ThreadRow {
            tid,
            pid: 10,
            comm: "node".into(),
            alive: true,
            voluntary_switches: 0,
            involuntary_switches: 0,
            on_cpu_ns: wall - idle,
            runqueue_ns: 0,
            blocked_ns: idle,
            blocked_by: BlockedBy {
                waiting_for_work_ns: idle,
                condition_ns: idle,
                ..Default::default()
            },
            wall_ns: wall,
            runqueue: Default::default(),
            role: Role::Other,
            syscalls: Vec::new(),
            cpu_without_syscalls_ns: 0,
        }
    }

    #[test]
    fn threads_on_one_condition_variable_are_a_pool() {
        let mut t = vec![
            thread(10, 1000, 900),
            thread(11, 1000, 0),
            thread(12, 1000, 50),
            thread(13, 1000, 990),
            thread(14, 1000, 990),
            thread(15, 1000, 500),
        ];
        // 11 and 12 on one condvar (its two words), 13 and 14 on another, 15 alone.
        let cond = [
            (11, 0x1000),
            (12, 0x1004),
            (13, 0x2000),
            (14, 0x2000),
            (15, 0x3000),
        ]
        .into_iter()
        .collect();
        let loops = [10].into_iter().collect();
        let pools = assign(&mut t, &cond, &loops);
        let roles: Vec<Role> = t.iter().map(|t| t.role).collect();
        use Role::*;
        assert_eq!(
            roles,
            [
                MainEventLoop,
                PoolWorker,
                PoolWorker,
                PoolWorker,
                PoolWorker,
                Worker
            ]
        );
        assert_eq!(pools.len(), 2);
        assert_eq!(pools[0].tids, [11, 12]);
        assert_eq!((pools[0].busy_ns, pools[0].wall_ns), (1950, 2000));
        assert!(pools[0].saturated);
        assert_eq!(pools[1].tids, [13, 14]);
        assert!((pools[1].utilisation - 0.01).abs() < 1e-9);
        assert!(!pools[1].saturated);
    }

    #[test]
    fn the_pool_word_is_the_longest_waits() {
        // Waited 1 s for work on 0x1000; since then, lock waits of 1 ms on 0x2000.
        assert_eq!(pool_word(0x1000, 1_000_000_000, 0x2000, 0), 0x1000);
        assert_eq!(pool_word(0x1000, 1_000_000_000, 0x2000, 1_000_000), 0x1000);
        // Waiting on 0x2000 for longer than any ended wait.
        assert_eq!(
            pool_word(0x1000, 1_000_000_000, 0x2000, 2_000_000_000),
            0x2000
        );
        // In its first wait since it started, or none.
        assert_eq!(pool_word(0, 0, 0x3000, 5), 0x3000);
        assert_eq!(pool_word(0, 0, 0, 0), 0);
    }
}
