//! What a traced process is made of (issue 15), beside the live numbers, so that `ps`,
//! `pmap` and `lsof` are not needed: its state, parent, user and threads; its memory by
//! region (what its mappings hold: the program's text and data, the heap, the stack, shared
//! libraries, other files, anonymous memory) with the growth since tracing started; its
//! descriptors by type, sockets by family and state, the most open paths and peers.
//! Pure: `collect::anatomy` reads /proc into a [`RawAnatomy`], this turns it into the
//! report.
use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

/// Paths and peers listed, the most frequent first.
pub const TOP: usize = 5;

/// What a mapping maps, as /proc/PID/maps names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MapPath {
    File(String),
    Heap,
    /// The main thread's stack.
    Stack,
    Anon,
    /// `[vdso]`, `[vvar]`, `[vsyscall]` and the like.
    Kernel,
}

/// One mapping of /proc/PID/smaps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawMap {
    pub path: MapPath,
    pub exec: bool,
    pub size: u64,
    pub rss: u64,
}

/// A socket's entry in the process's network namespace's tables (/proc/PID/net/*).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawSocket {
    /// `tcp`, `tcp6`, `udp`, `udp6`, `unix`.
    pub family: &'static str,
    /// The kernel's state name: `LISTEN`, `ESTABLISHED`, ... (for unix, `CONNECTED` etc.).
    pub state: String,
    /// Where it is bound (`127.0.0.1:8080`, or a unix path).
    pub local: String,
    /// The peer of a connected inet socket.
    pub peer: Option<String>,
}

/// What a descriptor refers to (the target of /proc/PID/fd/N).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RawFd {
    /// A path: a regular file, a directory, a device.
    Path(String),
    /// `socket:[inode]`.
    Socket(u64),
    Pipe,
    /// `anon_inode:NAME` (eventfd, eventpoll, timerfd, signalfd, inotify, pidfd, ...).
    Anon(String),
    MemFd,
    Other,
}

/// Who a process is: /proc/PID/status's `State` (e.g. `S (sleeping)`), `PPid`, real and
/// effective uid, real gid, `Threads`, and the effective user's name where the passwd
/// database has one.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Identity {
    pub state: String,
    pub parent: u32,
    pub uid: u32,
    pub euid: u32,
    pub gid: u32,
    pub user: Option<String>,
    pub threads: u64,
}

/// A child of the process that has exited and not been reaped (state `Z` in
/// /proc/CHILD/stat, the process its parent).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawZombie {
    pub pid: u32,
    /// /proc/CHILD/stat's start time: with the pid, who it is.
    pub start_ticks: u64,
    pub comm: String,
}

/// One reading of a process's anatomy.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RawAnatomy {
    pub who: Identity,
    /// Its parent's name (/proc/PPID/comm).
    pub parent_comm: Option<String>,
    /// Its zombie children.
    pub zombies: Vec<RawZombie>,
    /// The program's path (/proc/PID/exe), to tell its own mappings from the libraries'.
    pub exe: Option<String>,
    pub maps: Vec<RawMap>,
    pub fds: Vec<RawFd>,
    /// By socket inode.
    pub sockets: HashMap<u64, RawSocket>,
}

/// The regions a process's mappings are summed into.
pub const REGIONS: [&str; 8] = [
    "text", "data", "heap", "stack", "libs", "file", "anon", "kernel",
];

/// Which region a mapping belongs to: `text` and `data` are the program's own file's
/// executable and other mappings, `libs` mappings of shared objects (`.so` in the name),
/// `file` of any other file.
pub fn region(m: &RawMap, exe: Option<&str>) -> &'static str {
    match &m.path {
        MapPath::Heap => "heap",
        MapPath::Stack => "stack",
        MapPath::Anon => "anon",
        MapPath::Kernel => "kernel",
        MapPath::File(p) if Some(p.as_str()) == exe => {
            if m.exec {
                "text"
            } else {
                "data"
            }
        }
        MapPath::File(p) if p.rsplit('/').next().is_some_and(|n| n.contains(".so")) => "libs",
        MapPath::File(_) => "file",
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct RegionReport {
    pub mappings: u64,
    pub size_bytes: u64,
    pub rss_bytes: u64,
    /// Since tracing started (its first reading).
    pub rss_growth_bytes: i64,
}

/// A name (path, peer) and how many descriptors name it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Named {
    pub name: String,
    pub count: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct FdBreakdown {
    pub total: u64,
    /// `file` (any path outside /dev: files, directories), `device`, `socket`, `pipe`, `eventfd`, `epoll`, `timerfd`,
    /// `signalfd`, `inotify`, `pidfd`, `memfd`, `anon:NAME`, `other`.
    pub by_type: BTreeMap<String, u64>,
    /// Sockets by family and state: `tcp LISTEN`, `tcp ESTABLISHED`, `unix CONNECTED`, ...
    /// (`other` for families not in those tables: netlink, packet, ...).
    pub sockets: BTreeMap<String, u64>,
    /// The paths most descriptors name, the most first (at most [`TOP`]).
    pub top_paths: Vec<Named>,
    /// The peers of connected inet sockets, likewise.
    pub top_peers: Vec<Named>,
    /// Listening inet sockets (TCP in LISTEN, UDP bound and not connected): `tcp
    /// 0.0.0.0:8080`, `udp6 [::]:53`.
    pub listening: Vec<String>,
}

/// Processes of each selector whose anatomy is read (each is a /proc reading at every
/// report): the first ones taken in that still run.
pub const MEMBERS_READ: usize = 4;

/// Zombie children listed, the longest dead first; more are only counted.
pub const ZOMBIES_LISTED: usize = 10;
/// Child exits (SIGCHLDs) remembered per process while their children are not reaped.
pub const CHILD_EXITS_KEPT: usize = 4096;

/// A zombie child as reported.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Zombie {
    pub pid: u32,
    pub comm: String,
    /// How long it had been a zombie at the reading: since its exit when tracer saw it
    /// (`since` = `exit`: its SIGCHLD to this process), else at least since the first
    /// reading that showed it a zombie (`first_seen`).
    pub zombie_s: f64,
    pub since: &'static str,
}

/// The process's children that have exited and not been reaped.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ZombieChildren {
    pub count: u64,
    /// The longest dead first, at most [`ZOMBIES_LISTED`].
    pub listed: Vec<Zombie>,
}

/// A process whose parent died while it was traced: the kernel gave it to init or to a
/// subreaper (`PR_SET_CHILD_SUBREAPER`: systemd --user, a container's init, ...).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Orphan {
    /// Its parent when tracing started.
    pub parent_was: u32,
    /// Its parent now, and that one's name.
    pub parent: u32,
    pub parent_comm: Option<String>,
    /// How long it had been an orphan at the reading: at least since the first reading
    /// that showed the new parent.
    pub orphaned_s: f64,
}

/// What the anatomy keeps of one process between its readings: when its children exited
/// (their SIGCHLDs), when each zombie child was first seen, when it was first seen
/// reparented. Bounded: exits only of children not yet reaped (at most
/// [`CHILD_EXITS_KEPT`]), first sightings only of current zombies.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Household {
    /// Child pid -> monotonic ns of its last exit.
    exits: BTreeMap<u32, u64>,
    /// (pid, start ticks) -> monotonic ns of the first reading that showed it a zombie.
    first_seen: BTreeMap<(u32, u64), u64>,
    /// (new parent, monotonic ns of the first reading that showed it).
    orphaned: Option<(u32, u64)>,
}

impl Household {
    /// A child of the process exited at `ts_ns` (its SIGCHLD, generated by the exiting
    /// child itself: the signal's sender is the child).
    pub fn child_exited(&mut self, child: u32, ts_ns: u64) {
        self.exits.insert(child, ts_ns);
        if self.exits.len() > CHILD_EXITS_KEPT
            && let Some((&oldest, _)) = self.exits.iter().min_by_key(|(_, t)| **t)
        {
            self.exits.remove(&oldest);
        }
    }

    /// A reading at `at_ns` (monotonic); `start` is the first reading since tracing
    /// started (the parent it had then). Its zombie children and whether it is an orphan.
    pub fn observe(
        &mut self,
        now: &RawAnatomy,
        start: Option<&RawAnatomy>,
        at_ns: u64,
    ) -> (ZombieChildren, Option<Orphan>) {
        let zombies: Vec<&RawZombie> = now.zombies.iter().collect();
        self.first_seen
            .retain(|k, _| zombies.iter().any(|z| (z.pid, z.start_ticks) == *k));
        // Exits of children reaped since are forgotten; one just read, whose child /proc
        // does not show a zombie yet, is kept a moment.
        self.exits.retain(|pid, t| {
            zombies.iter().any(|z| z.pid == *pid) || at_ns.saturating_sub(*t) < 1_000_000_000
        });
        let mut listed: Vec<Zombie> = zombies
            .iter()
            .map(|z| {
                let seen = *self
                    .first_seen
                    .entry((z.pid, z.start_ticks))
                    .or_insert(at_ns);
                let (since_ns, since) = match self.exits.get(&z.pid) {
                    Some(&t) if t <= at_ns => (t, "exit"),
                    _ => (seen, "first_seen"),
                };
                Zombie {
                    pid: z.pid,
                    comm: z.comm.clone(),
                    zombie_s: at_ns.saturating_sub(since_ns) as f64 / 1e9,
                    since,
                }
            })
            .collect();
        listed.sort_by(|a, b| b.zombie_s.total_cmp(&a.zombie_s).then(a.pid.cmp(&b.pid)));
        listed.truncate(ZOMBIES_LISTED);
        let zombies = ZombieChildren {
            count: zombies.len() as u64,
            listed,
        };
        let was = start.map(|s| s.who.parent);
        let orphan = match was {
            Some(was) if was != now.who.parent && now.who.parent != 0 => {
                let parent = now.who.parent;
                let at = match self.orphaned {
                    Some((p, t)) if p == parent => t,
                    _ => at_ns,
                };
                self.orphaned = Some((parent, at));
                Some(Orphan {
                    parent_was: was,
                    parent,
                    parent_comm: now.parent_comm.clone(),
                    orphaned_s: at_ns.saturating_sub(at) as f64 / 1e9,
                })
            }
            _ => {
                self.orphaned = None;
                None
            }
        };
        (zombies, orphan)
    }
}

/// A selector's process and its anatomy (`processes[].members`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MemberAnatomy {
    /// The selector's slot.
    #[serde(skip)]
    pub slot: u32,
    pub pid: u32,
    pub anatomy: Anatomy,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Anatomy {
    /// The process had ended by the window's end: this is its last reading while it ran.
    pub ended: bool,
    #[serde(flatten)]
    pub who: Identity,
    /// By region ([`REGIONS`]).
    pub regions: BTreeMap<&'static str, RegionReport>,
    /// The regions' RSS summed (equal to /proc/PID/smaps_rollup's Rss).
    pub rss_bytes: u64,
    pub fds: FdBreakdown,
    /// Said loudly: a process that listens on a network address as root.
    pub warnings: Vec<String>,
    /// Its children that have exited and not been reaped.
    pub zombie_children: ZombieChildren,
    /// Set when its parent died while it was traced.
    pub orphaned: Option<Orphan>,
}

fn top(counts: BTreeMap<String, u64>) -> Vec<Named> {
    let mut v: Vec<Named> = counts
        .into_iter()
        .map(|(name, count)| Named { name, count })
        .collect();
    v.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.name.cmp(&b.name)));
    v.truncate(TOP);
    v
}

fn anon_type(name: &str) -> String {
    match name.trim_start_matches('[').trim_end_matches(']') {
        "eventfd" => "eventfd".into(),
        "eventpoll" => "epoll".into(),
        "timerfd" => "timerfd".into(),
        "signalfd" => "signalfd".into(),
        "inotify" => "inotify".into(),
        "pidfd" => "pidfd".into(),
        other => format!("anon:{other}"),
    }
}

/// Whether a bound address is reachable from other machines (not loopback).
fn network_facing(local: &str) -> bool {
    let host = local.rsplit_once(':').map_or(local, |(h, _)| h);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    !(host.starts_with("127.") || host == "::1" || host == "localhost")
}

impl Anatomy {
    /// The report of a reading; `start`, the first reading since tracing started, gives
    /// the regions' growth.
    pub fn build(now: &RawAnatomy, start: Option<&RawAnatomy>) -> Anatomy {
        let sum = |r: &RawAnatomy| {
            let mut regions: BTreeMap<&'static str, RegionReport> = REGIONS
                .iter()
                .map(|k| (*k, RegionReport::default()))
                .collect();
            for m in &r.maps {
                let e = regions
                    .get_mut(region(m, r.exe.as_deref()))
                    .expect("every region is listed");
                e.mappings += 1;
                e.size_bytes += m.size;
                e.rss_bytes += m.rss;
            }
            regions
        };
        let mut regions = sum(now);
        if let Some(s) = start {
            let before = sum(s);
            for (k, e) in &mut regions {
                e.rss_growth_bytes = e.rss_bytes as i64 - before[k].rss_bytes as i64;
            }
        }
        let rss_bytes = regions.values().map(|e| e.rss_bytes).sum();

        let mut fds = FdBreakdown {
            total: now.fds.len() as u64,
            ..Default::default()
        };
        let (mut paths, mut peers) = (BTreeMap::new(), BTreeMap::new());
        for fd in &now.fds {
            let kind = match fd {
                RawFd::Path(p) => {
                    *paths.entry(p.clone()).or_insert(0) += 1;
                    if p.starts_with("/dev/") {
                        "device".to_string()
                    } else {
                        "file".to_string()
                    }
                }
                RawFd::Socket(inode) => {
                    let key = match now.sockets.get(inode) {
                        Some(s) => {
                            if let Some(p) = &s.peer {
                                *peers.entry(p.clone()).or_insert(0) += 1;
                            }
                            format!("{} {}", s.family, s.state)
                        }
                        None => "other".to_string(),
                    };
                    *fds.sockets.entry(key).or_insert(0) += 1;
                    "socket".to_string()
                }
                RawFd::Pipe => "pipe".to_string(),
                RawFd::Anon(name) => anon_type(name),
                RawFd::MemFd => "memfd".to_string(),
                RawFd::Other => "other".to_string(),
            };
            *fds.by_type.entry(kind).or_insert(0) += 1;
        }
        fds.top_paths = top(paths);
        fds.top_peers = top(peers);
        let mut listening: Vec<(String, bool)> = now
            .fds
            .iter()
            .filter_map(|fd| match fd {
                RawFd::Socket(i) => now.sockets.get(i),
                _ => None,
            })
            .filter(|s| {
                (s.family.starts_with("tcp") && s.state == "LISTEN")
                    || (s.family.starts_with("udp") && s.peer.is_none())
            })
            .map(|s| {
                (
                    format!("{} {}", s.family, s.local),
                    network_facing(&s.local),
                )
            })
            .collect();
        listening.sort();
        listening.dedup();
        let mut warnings = Vec::new();
        let exposed: Vec<&str> = listening
            .iter()
            .filter(|(_, net)| *net)
            .map(|(l, _)| l.as_str())
            .collect();
        if now.who.euid == 0 && !exposed.is_empty() {
            warnings.push(format!(
                "runs as root (euid 0) and listens on the network: {}",
                exposed.join(", ")
            ));
        }
        fds.listening = listening.into_iter().map(|(l, _)| l).collect();
        Anatomy {
            ended: false,
            who: now.who.clone(),
            regions,
            rss_bytes,
            fds,
            warnings,
            zombie_children: ZombieChildren {
                count: now.zombies.len() as u64,
                listed: Vec::new(),
            },
            orphaned: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(path: MapPath, exec: bool, size: u64, rss: u64) -> RawMap {
        RawMap {
            path,
            exec,
            size,
            rss,
        }
    }

    fn raw() -> RawAnatomy {
        let exe = "/usr/bin/app".to_string();
        RawAnatomy {
            who: Identity {
                state: "S (sleeping)".into(),
                parent: 1,
                user: Some("root".into()),
                threads: 3,
                ..Default::default()
            },
            parent_comm: None,
            zombies: Vec::new(),
            exe: Some(exe.clone()),
            maps: vec![
                map(MapPath::File(exe.clone()), false, 8192, 8192),
                map(MapPath::File(exe.clone()), true, 65536, 40960),
                map(MapPath::File(exe), false, 4096, 4096),
                map(MapPath::Heap, false, 1 << 20, 1 << 19),
                map(
                    MapPath::File("/usr/lib/x86_64-linux-gnu/libc.so.6".into()),
                    true,
                    1 << 21,
                    1 << 20,
                ),
                map(MapPath::File("/var/lib/app/data.db".into()), false, 4096, 0),
                map(MapPath::Anon, false, 1 << 23, 1 << 22),
                map(MapPath::Stack, false, 135168, 16384),
                map(MapPath::Kernel, true, 8192, 4096),
            ],
            fds: vec![
                RawFd::Path("/dev/null".into()),
                RawFd::Path("/var/log/app.log".into()),
                RawFd::Path("/var/log/app.log".into()),
                RawFd::Socket(10),
                RawFd::Socket(11),
                RawFd::Socket(12),
                RawFd::Socket(13),
                RawFd::Socket(99),
                RawFd::Pipe,
                RawFd::Pipe,
                RawFd::Anon("[eventfd]".into()),
                RawFd::Anon("[eventpoll]".into()),
                RawFd::Anon("[io_uring]".into()),
            ],
            sockets: [
                (10, "tcp", "LISTEN", "0.0.0.0:8080", None),
                (
                    11,
                    "tcp",
                    "ESTABLISHED",
                    "10.0.0.2:8080",
                    Some("10.0.0.9:51000"),
                ),
                (
                    12,
                    "tcp",
                    "ESTABLISHED",
                    "10.0.0.2:8080",
                    Some("10.0.0.9:51002"),
                ),
                (13, "unix", "UNCONNECTED", "/run/app.sock", None),
            ]
            .into_iter()
            .map(|(i, family, state, local, peer)| {
                (
                    i,
                    RawSocket {
                        family,
                        state: state.into(),
                        local: local.into(),
                        peer: peer.map(str::to_string),
                    },
                )
            })
            .collect(),
        }
    }

    #[test]
    fn mappings_are_summed_by_region_with_growth() {
        let start = raw();
        let mut now = raw();
        now.maps[3].rss += 1 << 20; // the heap grew by 1 MiB
        now.maps.push(map(MapPath::Anon, false, 4096, 4096));
        let a = Anatomy::build(&now, Some(&start));
        let r = &a.regions;
        assert_eq!(
            (
                r["text"].mappings,
                r["text"].rss_bytes,
                r["data"].mappings,
                r["data"].rss_bytes
            ),
            (1, 40960, 2, 12288)
        );
        assert_eq!(
            (r["heap"].rss_bytes, r["heap"].rss_growth_bytes),
            ((1 << 19) + (1 << 20), 1 << 20)
        );
        assert_eq!(
            (
                r["libs"].size_bytes,
                r["file"].mappings,
                r["file"].rss_bytes
            ),
            (1 << 21, 1, 0)
        );
        assert_eq!((r["anon"].mappings, r["anon"].rss_growth_bytes), (2, 4096));
        assert_eq!(r["stack"].rss_bytes, 16384);
        assert_eq!(r["kernel"].rss_bytes, 4096);
        assert_eq!(a.rss_bytes, now.maps.iter().map(|m| m.rss).sum::<u64>());
        assert_eq!(
            Anatomy::build(&now, None).regions["heap"].rss_growth_bytes,
            0
        );
    }

    #[test]
    fn descriptors_are_broken_down_by_type_family_and_state() {
        let a = Anatomy::build(&raw(), None);
        let f = &a.fds;
        assert_eq!(f.total, 13);
        let by: Vec<(&str, u64)> = f.by_type.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        assert_eq!(
            by,
            [
                ("anon:io_uring", 1),
                ("device", 1),
                ("epoll", 1),
                ("eventfd", 1),
                ("file", 2),
                ("pipe", 2),
                ("socket", 5)
            ]
        );
        let socks: Vec<(&str, u64)> = f.sockets.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        assert_eq!(
            socks,
            [
                ("other", 1),
                ("tcp ESTABLISHED", 2),
                ("tcp LISTEN", 1),
                ("unix UNCONNECTED", 1)
            ]
        );
        assert_eq!(
            f.top_paths[0],
            Named {
                name: "/var/log/app.log".into(),
                count: 2
            }
        );
        assert_eq!(f.top_peers.len(), 2);
        assert_eq!(f.listening, ["tcp 0.0.0.0:8080"]);
        // Root, listening on every address: said.
        assert_eq!(a.warnings.len(), 1, "{:?}", a.warnings);
        assert!(
            a.warnings[0].contains("tcp 0.0.0.0:8080"),
            "{:?}",
            a.warnings
        );
    }

    fn zombie(pid: u32) -> RawZombie {
        RawZombie {
            pid,
            start_ticks: 100 + pid as u64,
            comm: "child".into(),
        }
    }

    /// A zombie is dated from its exit when tracer saw it, else from the first reading
    /// that showed it; reaped ones are forgotten, and a pid dead again is a new zombie.
    #[test]
    fn zombies_are_dated_from_their_exit_or_first_sighting() {
        const S: u64 = 1_000_000_000;
        let mut h = Household::default();
        let mut r = raw();
        r.zombies = vec![zombie(10), zombie(11)];
        // 10 was a zombie before tracing; 11 exited at 5 s, seen; 12 exited and was reaped.
        h.child_exited(11, 5 * S);
        h.child_exited(12, 5 * S);
        let (z, _) = h.observe(&r, Some(&raw()), 6 * S);
        assert_eq!(z.count, 2);
        let got: Vec<(u32, f64, &str)> = z
            .listed
            .iter()
            .map(|z| (z.pid, z.zombie_s, z.since))
            .collect();
        assert_eq!(got, [(11, 1.0, "exit"), (10, 0.0, "first_seen")]);
        let (z, _) = h.observe(&r, Some(&raw()), 9 * S);
        let got: Vec<(u32, f64, &str)> = z
            .listed
            .iter()
            .map(|z| (z.pid, z.zombie_s, z.since))
            .collect();
        assert_eq!(got, [(11, 4.0, "exit"), (10, 3.0, "first_seen")]);
        assert!(
            !h.exits.contains_key(&12),
            "a reaped child's exit is forgotten"
        );
        // 10 reaped, its pid reused by a child that died again at 9.5 s.
        r.zombies = vec![RawZombie {
            start_ticks: 999,
            ..zombie(10)
        }];
        h.child_exited(10, 9 * S + S / 2);
        let (z, _) = h.observe(&r, Some(&raw()), 10 * S);
        assert_eq!(
            (z.count, z.listed[0].zombie_s, z.listed[0].since),
            (1, 0.5, "exit")
        );
        assert_eq!(h.first_seen.len(), 1);
        // Many children: counted, the longest dead listed.
        r.zombies = (1000..1050).map(zombie).collect();
        let (z, _) = h.observe(&r, None, 11 * S);
        assert_eq!((z.count, z.listed.len()), (50, ZOMBIES_LISTED));
        // Exits remembered are bounded.
        for pid in 0..(CHILD_EXITS_KEPT as u32 + 10) {
            h.child_exited(pid + 5000, pid as u64);
        }
        assert_eq!(h.exits.len(), CHILD_EXITS_KEPT);
        assert!(!h.exits.contains_key(&5000), "the oldest exit made room");
    }

    /// A process whose parent changed is an orphan from the first reading that showed it.
    #[test]
    fn a_process_whose_parent_changed_is_an_orphan() {
        const S: u64 = 1_000_000_000;
        let mut h = Household::default();
        let start = Identity {
            parent: 4000,
            ..raw().who
        };
        let start = RawAnatomy {
            who: start,
            ..raw()
        };
        assert_eq!(h.observe(&start, Some(&start), S).1, None);
        let mut now = start.clone();
        now.who.parent = 1;
        now.parent_comm = Some("init".into());
        let o = h.observe(&now, Some(&start), 2 * S).1.unwrap();
        assert_eq!(
            (
                o.parent_was,
                o.parent,
                o.parent_comm.as_deref(),
                o.orphaned_s
            ),
            (4000, 1, Some("init"), 0.0)
        );
        let o = h.observe(&now, Some(&start), 5 * S).1.unwrap();
        assert_eq!(o.orphaned_s, 3.0);
    }

    #[test]
    fn loopback_or_unprivileged_listeners_are_no_warning() {
        let mut r = raw();
        r.sockets.get_mut(&10).unwrap().local = "127.0.0.1:8080".into();
        assert!(Anatomy::build(&r, None).warnings.is_empty());
        let mut r = raw();
        r.who.euid = 1000;
        assert!(Anatomy::build(&r, None).warnings.is_empty());
        assert!(network_facing("[::]:53") && !network_facing("[::1]:53"));
    }
}
