//! Reads a process's anatomy from /proc (status, smaps, fd, and its network namespace's
//! socket tables) into a [`RawAnatomy`], through the procfs crate.
use std::collections::HashMap;

use procfs::{
    net::{TcpState, UdpState, UnixState},
    process::{FDTarget, MMPermissions, MMapPath, Process},
};

use crate::model::anatomy::{Identity, MapPath, RawAnatomy, RawFd, RawMap, RawSocket, RawZombie};

fn tcp_state(s: &TcpState) -> &'static str {
    match s {
        TcpState::Established => "ESTABLISHED",
        TcpState::SynSent => "SYN_SENT",
        TcpState::SynRecv => "SYN_RECV",
        TcpState::FinWait1 => "FIN_WAIT1",
        TcpState::FinWait2 => "FIN_WAIT2",
        TcpState::TimeWait => "TIME_WAIT",
        TcpState::Close => "CLOSE",
        TcpState::CloseWait => "CLOSE_WAIT",
        TcpState::LastAck => "LAST_ACK",
        TcpState::Listen => "LISTEN",
        TcpState::Closing => "CLOSING",
        TcpState::NewSynRecv => "NEW_SYN_RECV",
    }
}

/// A peer worth naming: not the unspecified address of an unconnected socket.
fn peer(a: &std::net::SocketAddr) -> Option<String> {
    (!a.ip().is_unspecified() || a.port() != 0).then(|| a.to_string())
}

/// The sockets of the process's network namespace, by inode (a table it cannot read is
/// left out: its sockets are then `other`).
fn sockets(p: &Process) -> HashMap<u64, RawSocket> {
    let mut out = HashMap::new();
    for (family, entries) in [("tcp", p.tcp()), ("tcp6", p.tcp6())] {
        for e in entries.into_iter().flatten() {
            out.insert(
                e.inode,
                RawSocket {
                    family,
                    state: tcp_state(&e.state).into(),
                    local: e.local_address.to_string(),
                    peer: peer(&e.remote_address),
                },
            );
        }
    }
    for (family, entries) in [("udp", p.udp()), ("udp6", p.udp6())] {
        for e in entries.into_iter().flatten() {
            let state = match e.state {
                UdpState::Established => "ESTABLISHED",
                UdpState::Close => "UNCONNECTED",
            };
            out.insert(
                e.inode,
                RawSocket {
                    family,
                    state: state.into(),
                    local: e.local_address.to_string(),
                    peer: peer(&e.remote_address),
                },
            );
        }
    }
    for e in p.unix().into_iter().flatten() {
        let state = match e.state {
            UnixState::UNCONNECTED => "UNCONNECTED",
            UnixState::CONNECTING => "CONNECTING",
            UnixState::CONNECTED => "CONNECTED",
            UnixState::DISCONNECTING => "DISCONNECTING",
        };
        out.insert(
            e.inode,
            RawSocket {
                family: "unix",
                state: state.into(),
                local: e
                    .path
                    .map(|p| p.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                peer: None,
            },
        );
    }
    out
}

/// How long the socket tables read for a process stand for it while its sockets are the
/// same ones: reading them walks the namespace's whole hash tables (a few ms on a large
/// machine, even with no sockets in them), so they are read again only when its sockets
/// changed, or after this long (for their states).
pub const NET_FRESH: std::time::Duration = std::time::Duration::from_secs(10);

/// Reads `pid`'s anatomy; None when it is gone (or a zombie: no mappings to read), or
/// when the process under that pid by the end of the reading is not the one that started
/// at `start_ticks` (/proc/PID/stat's start; 0: not known): a pid given to another
/// process meanwhile is not read as this one's. The
/// socket tables are read only when it has sockets, and taken from `prev` (its previous
/// reading, `net_at` old) when it has the same ones and that is recent.
pub fn read(
    pid: u32,
    start_ticks: u64,
    prev: Option<(&RawAnatomy, std::time::Instant)>,
) -> Option<(RawAnatomy, std::time::Instant)> {
    let p = Process::new(pid as i32).ok()?;
    let status = p.status().ok()?;
    let maps = p.smaps().ok()?;
    let maps: Vec<RawMap> = maps
        .into_iter()
        .map(|m| RawMap {
            path: match m.pathname {
                MMapPath::Path(path) => MapPath::File(path.to_string_lossy().into_owned()),
                MMapPath::Heap => MapPath::Heap,
                MMapPath::Stack | MMapPath::TStack(_) => MapPath::Stack,
                MMapPath::Anonymous | MMapPath::Other(_) => MapPath::Anon,
                _ => MapPath::Kernel,
            },
            exec: m.perms.contains(MMPermissions::EXECUTE),
            size: m.address.1 - m.address.0,
            rss: m.extension.map.get("Rss").copied().unwrap_or(0),
        })
        .collect();
    if maps.is_empty() {
        return None;
    }
    let fds: Vec<RawFd> = p
        .fd()
        .map(|it| {
            it.flatten()
                .map(|fd| match fd.target {
                    FDTarget::Path(path) => RawFd::Path(path.to_string_lossy().into_owned()),
                    FDTarget::Socket(inode) => RawFd::Socket(inode),
                    FDTarget::Pipe(_) => RawFd::Pipe,
                    FDTarget::AnonInode(name) => RawFd::Anon(name),
                    FDTarget::MemFD(_) => RawFd::MemFd,
                    _ => RawFd::Other,
                })
                .collect()
        })
        .unwrap_or_default();
    let inodes = |fds: &[RawFd]| -> Vec<u64> {
        let mut v: Vec<u64> = fds
            .iter()
            .filter_map(|f| match f {
                RawFd::Socket(i) => Some(*i),
                _ => None,
            })
            .collect();
        v.sort_unstable();
        v
    };
    let now_inodes = inodes(&fds);
    let (sockets, net_at) = match prev {
        _ if now_inodes.is_empty() => (HashMap::new(), std::time::Instant::now()),
        Some((p, at)) if at.elapsed() < NET_FRESH && inodes(&p.fds) == now_inodes => {
            (p.sockets.clone(), at)
        }
        _ => (sockets(&p), std::time::Instant::now()),
    };
    let user = nix::unistd::User::from_uid(status.euid.into())
        .ok()
        .flatten()
        .map(|u| u.name);
    if start_ticks != 0 && p.stat().ok()?.starttime != start_ticks {
        return None;
    }
    let parent = status.ppid.max(0);
    let parent_comm = Process::new(parent)
        .and_then(|pp| pp.stat())
        .ok()
        .map(|st| st.comm);
    Some(RawAnatomy {
        parent_comm,
        zombies: zombies(&p, pid),
        who: Identity {
            state: status.state,
            parent: status.ppid.max(0) as u32,
            uid: status.ruid,
            euid: status.euid,
            gid: status.rgid,
            user,
            threads: status.threads,
        },
        exe: p.exe().ok().map(|e| e.to_string_lossy().into_owned()),
        maps,
        fds,
        sockets,
    })
    .map(|a| (a, net_at))
}

/// The zombie children of `pid`: the children its threads' /proc/PID/task/TID/children
/// list (CONFIG_PROC_CHILDREN) whose state is `Z`; where the kernel has no such file, the
/// processes of /proc whose parent it is.
fn zombies(p: &Process, pid: u32) -> Vec<RawZombie> {
    let zombie = |child: i32| -> Option<RawZombie> {
        let st = Process::new(child).ok()?.stat().ok()?;
        (st.state == 'Z' && st.ppid == pid as i32).then_some(RawZombie {
            pid: child as u32,
            start_ticks: st.starttime,
            comm: st.comm,
        })
    };
    let mut children = Vec::new();
    let mut listed = false;
    for task in p.tasks().into_iter().flatten().flatten() {
        let path = format!("/proc/{pid}/task/{}/children", task.tid);
        if let Ok(text) = std::fs::read_to_string(path) {
            listed = true;
            children.extend(
                text.split_whitespace()
                    .filter_map(|c| c.parse::<i32>().ok()),
            );
        }
    }
    if !listed {
        let all = procfs::process::all_processes()
            .into_iter()
            .flatten()
            .flatten();
        return all.filter_map(|c| zombie(c.pid)).collect();
    }
    children.sort_unstable();
    children.dedup();
    children.into_iter().filter_map(zombie).collect()
}
