//! Fuzzes strace mode's decoding (`--trace`, `-y`) with arbitrary bytes: a record that
//! `CallRecord::decode` accepts becomes a call (its descriptors unnamed, then named from
//! the input through `-y`'s own text functions), whose strace line has no raw control
//! character (names and paths are escaped) and whose JSON line is one line and parses
//! back to it. The same
//! bytes go to `-y`'s parsers of `/proc/net/{tcp,udp,unix}` tables and of sock_diag's
//! answer, whose rows must make lines as safe.
#![no_main]

use std::net::{IpAddr, SocketAddr};

use libfuzzer_sys::fuzz_target;
use tracer::strace::{
    Call, Item,
    fds::{self, FdNamer},
    json_line,
};
use tracer_common::stream::{CallRecord, MAX_PATHS, NR_COMPAT};

/// Names descriptors from the input, as `collect::fds` does from `/proc`: a link, a unix
/// socket or an internet socket, made by the same functions; or no name.
struct Names<'a>(&'a [u8]);

impl FdNamer for Names<'_> {
    fn name(&mut self, _tgid: u32, fd: i32, _after_ns: u64) -> Option<String> {
        let at = fd as u32 as usize % (self.0.len() + 1);
        let bytes = &self.0[at..self.0.len().min(at + 64)];
        match fd.rem_euclid(4) {
            0 => None,
            1 => Some(fds::link_text(bytes)),
            2 => Some(fds::unix_text(
                "UNIX-STREAM",
                fd as u64,
                (fd % 3 == 0).then_some(at as u64),
                Some(bytes),
            )),
            _ => {
                let mut w = [0u8; 18];
                let n = bytes.len().min(w.len());
                w[..n].copy_from_slice(&bytes[..n]);
                let port = u16::from_ne_bytes([w[16], w[17]]);
                let ip = if w[0] & 1 == 0 {
                    IpAddr::from(<[u8; 4]>::try_from(&w[..4]).unwrap())
                } else {
                    IpAddr::from(<[u8; 16]>::try_from(&w[..16]).unwrap())
                };
                let remote = SocketAddr::new(ip, port.rotate_left(8));
                Some(fds::inet_text("TCP", SocketAddr::new(ip, port), remote))
            }
        }
    }
}

/// What a line shown on a terminal must be: no raw control character.
fn assert_printable(line: &str) {
    assert!(!line.chars().any(char::is_control), "{line:?}");
}

fn call(r: &CallRecord, wall_offset_ns: i128, names: Option<&mut dyn FdNamer>) {
    let named = names.is_some();
    let c = Call::from_record_named(r, wall_offset_ns, names);
    assert_eq!(c.nr, r.nr & !NR_COMPAT);
    assert_eq!((c.tid, c.pid, c.ret), (r.tid, r.tgid, r.ret));
    assert!(c.args.len() <= 6 && c.decoded.len() <= c.args.len());
    assert!(c.paths.len() <= MAX_PATHS);
    assert!(named || c.fds.is_empty());
    let mut line = String::new();
    c.write_line(&mut line);
    assert_printable(&line);
    assert!(line.contains(&format!(" [{} ", c.tid)) && line.ends_with('>'));
    let json = json_line(&Item::Call(Box::new(c.clone())));
    // One line, and no raw control character: tracer's JSON escapes C0, DEL and C1 alike
    // (serde_json alone leaves DEL and C1 raw).
    assert_printable(&json);
    let v: serde_json::Value = serde_json::from_str(&json).expect("a JSON line");
    assert_eq!(v["type"], "call");
    assert_eq!(v["syscall"], c.syscall.as_str());
    assert_eq!(v["comm"], c.comm.as_str());
    assert_eq!(v["ret"], c.ret);
    assert_eq!(v["decoded"].as_array().map(Vec::len), Some(c.decoded.len()));
    assert_eq!(v["result"], c.result.as_str());
}

fn proc_net(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    for (_, local, remote) in fds::parse_inet(&text) {
        assert_printable(&fds::inet_text("TCP", local, remote));
    }
    for (inode, path) in fds::parse_unix(&text) {
        // A path is what follows the inode on its line.
        assert!(
            path.as_ref()
                .is_none_or(|p| !p.is_empty() && !p.contains(&b'\n'))
        );
        assert_printable(&fds::unix_text("UNIX", inode, None, path.as_deref()));
    }
    // The inode sock_diag was asked about, where the answer has it (or any).
    let inode = data
        .get(20..24)
        .map_or(0, |b| u32::from_ne_bytes(b.try_into().unwrap()));
    if let Some((peer, name)) = fds::parse_unix_diag(data, inode) {
        assert_ne!(peer, Some(0));
        // A name is `@` and the rest for an abstract one, else up to its first NUL.
        assert!(
            name.as_ref()
                .is_none_or(|n| { !n.is_empty() && (n[0] == b'@' || !n.contains(&0)) })
        );
        assert_printable(&fds::unix_text(
            "UNIX-STREAM",
            inode.into(),
            peer,
            name.as_deref(),
        ));
        // Another socket's answer is not this one's.
        assert_eq!(fds::parse_unix_diag(data, inode.wrapping_add(1)), None);
    }
    let link = fds::link_text(data);
    assert_printable(&link);
    assert!(!link.contains(['<', '>']));
    if let Some(n) = fds::socket_inode(data) {
        assert!(data.starts_with(b"socket:[") && data.ends_with(b"]"), "{n}");
    }
}

fuzz_target!(|data: &[u8]| {
    if let Some(r) = CallRecord::decode(data) {
        // Any wall-clock offset: from the input's last bytes.
        let tail = &data[data.len() - 8..];
        let offset = i64::from_ne_bytes(tail.try_into().unwrap()) as i128;
        call(&r, offset, None);
        call(&r, offset, Some(&mut Names(data)));
    }
    proc_net(data);
    let lost = json_line(&Item::Lost(data.len() as u64));
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&lost).unwrap()["calls"],
        data.len()
    );
});
