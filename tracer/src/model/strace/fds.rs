//! `-y` / `--decode-fds`: descriptors shown as what they are, in strace's spelling
//! (`3</etc/passwd>`, `4<pipe:[6789]>`, with `-yy` `5<TCP:[127.0.0.1:41234->127.0.0.1:8080]>`,
//! `6<UNIX-STREAM:[12345,"/run/x.sock"]>`). Pure: what `/proc` says comes in as text
//! (a descriptor's link, a `/proc/net` table), the decoration goes out as a string;
//! `collect::fds` reads `/proc`.
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::decode::escape_into;

/// Names the descriptors of the traced processes (at decode time).
pub trait FdNamer {
    /// What descriptor `fd` of process `tgid` is, escaped, without the `<>` (None: gone,
    /// or not asked), as read after `after_ns` (CLOCK_MONOTONIC), when the call ended.
    fn name(&mut self, tgid: u32, fd: i32, after_ns: u64) -> Option<String>;
}

/// A descriptor's `/proc/PID/fd/N` link as strace's `-y` shows it: the path or
/// `socket:[N]`, `pipe:[N]`, `anon_inode:[eventfd]`, with what is not printable, `<` and
/// `>` escaped (another user's file name never reaches the terminal raw).
pub fn link_text(link: &[u8]) -> String {
    let mut out = String::with_capacity(link.len());
    escape_into(link, b"<>", &mut out);
    out
}

/// The inode of a `socket:[N]` link.
pub fn socket_inode(link: &[u8]) -> Option<u64> {
    let s = std::str::from_utf8(link).ok()?;
    s.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()
}

/// One row of `/proc/net/{tcp,tcp6,udp,udp6}`: (inode, local, remote).
pub type InetRow = (u64, SocketAddr, SocketAddr);

/// The rows of a `/proc/net/{tcp,tcp6,udp,udp6}` table (its header and lines it cannot
/// read skipped). Addresses are the kernel's words in hex, in the host's byte order.
pub fn parse_inet(text: &str) -> Vec<InetRow> {
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_ascii_whitespace().collect();
            let inode = f.get(9)?.parse().ok()?;
            Some((inode, inet_addr(f.get(1)?)?, inet_addr(f.get(2)?)?))
        })
        .collect()
}

/// `0100007F:1F90` (v4) or 32 hex digits and a port (v6).
fn inet_addr(s: &str) -> Option<SocketAddr> {
    let (addr, port) = s.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let word = |i: usize| -> Option<[u8; 4]> {
        Some(
            u32::from_str_radix(addr.get(i * 8..i * 8 + 8)?, 16)
                .ok()?
                .to_ne_bytes(),
        )
    };
    let ip = match addr.len() {
        8 => IpAddr::V4(Ipv4Addr::from(word(0)?)),
        32 => {
            let mut b = [0u8; 16];
            for i in 0..4 {
                b[i * 4..i * 4 + 4].copy_from_slice(&word(i)?);
            }
            IpAddr::V6(Ipv6Addr::from(b))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// One row of `/proc/net/unix`: (inode, path as the kernel prints it: `@` first for an
/// abstract name).
pub type UnixRow = (u64, Option<Vec<u8>>);

/// The rows of `/proc/net/unix`. The path is what follows the inode (it may hold spaces).
pub fn parse_unix(text: &str) -> Vec<UnixRow> {
    text.lines()
        .filter_map(|line| {
            let mut rest = line.trim_start();
            let mut fields = Vec::with_capacity(7);
            for _ in 0..7 {
                let end = rest.find(' ').unwrap_or(rest.len());
                fields.push(&rest[..end]);
                rest = rest[end..].trim_start_matches(' ');
            }
            if !fields[0].ends_with(':') {
                return None;
            }
            let inode = fields[6].parse().ok()?;
            let path = (!rest.is_empty()).then(|| rest.as_bytes().to_vec());
            Some((inode, path))
        })
        .collect()
}

/// An internet socket as strace's `-yy` shows it: `TCP:[127.0.0.1:8080]` while it has no
/// peer, `TCP:[127.0.0.1:41234->127.0.0.1:8080]` once connected; v6 addresses bracketed.
pub fn inet_text(proto: &str, local: SocketAddr, remote: SocketAddr) -> String {
    let mut s = format!("{proto}:[{}", addr_text(local));
    if !remote.ip().is_unspecified() {
        s.push_str("->");
        s.push_str(&addr_text(remote));
    }
    s.push(']');
    s
}

fn addr_text(a: SocketAddr) -> String {
    match a.ip() {
        IpAddr::V4(ip) => format!("{ip}:{}", a.port()),
        IpAddr::V6(ip) => format!("[{ip}]:{}", a.port()),
    }
}

/// A unix socket as strace's `-yy` shows it: `UNIX-STREAM:[12345]`, with `->PEER` when
/// its peer is known and `,"PATH"` when it has a name (quoted and escaped).
pub fn unix_text(proto: &str, inode: u64, peer: Option<u64>, path: Option<&[u8]>) -> String {
    let mut s = format!("{proto}:[{inode}");
    if let Some(p) = peer {
        s.push_str(&format!("->{p}"));
    }
    if let Some(p) = path {
        s.push_str(",\"");
        escape_into(p, b"", &mut s);
        s.push('"');
    }
    s.push(']');
    s
}

/// A netlink `SOCK_DIAG_BY_FAMILY` request for the unix socket `inode`, asking its name
/// and its peer (`struct nlmsghdr` then `struct unix_diag_req`, linux/unix_diag.h).
pub fn unix_diag_request(inode: u32) -> [u8; 40] {
    const SOCK_DIAG_BY_FAMILY: u16 = 20;
    const UDIAG_SHOW_NAME: u32 = 1;
    const UDIAG_SHOW_PEER: u32 = 4;
    let mut m = [0u8; 40];
    m[0..4].copy_from_slice(&40u32.to_ne_bytes());
    m[4..6].copy_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    m[6..8].copy_from_slice(&(libc::NLM_F_REQUEST as u16).to_ne_bytes());
    m[16] = libc::AF_UNIX as u8;
    m[20..24].copy_from_slice(&u32::MAX.to_ne_bytes()); // every state
    m[24..28].copy_from_slice(&inode.to_ne_bytes());
    m[28..32].copy_from_slice(&(UDIAG_SHOW_NAME | UDIAG_SHOW_PEER).to_ne_bytes());
    m[32..40].copy_from_slice(&[0xff; 8]); // no cookie
    m
}

/// A unix socket's peer inode and name from the kernel's answer to
/// [`unix_diag_request`] (None: an error, or not that socket). An abstract name (a NUL
/// first) is shown `@name`, as strace does.
pub fn parse_unix_diag(answer: &[u8], inode: u32) -> Option<(Option<u64>, Option<Vec<u8>>)> {
    const UNIX_DIAG_NAME: u16 = 0;
    const UNIX_DIAG_PEER: u16 = 2;
    let u16_at = |i: usize| Some(u16::from_ne_bytes(answer.get(i..i + 2)?.try_into().ok()?));
    let u32_at = |i: usize| Some(u32::from_ne_bytes(answer.get(i..i + 4)?.try_into().ok()?));
    let len = (u32_at(0)? as usize).min(answer.len());
    // Not SOCK_DIAG_BY_FAMILY's answer (NLMSG_ERROR), or another socket's.
    if u16_at(4)? != 20 || u32_at(16 + 4)? != inode {
        return None;
    }
    let (mut peer, mut name) = (None, None);
    let mut at = 16 + 16;
    while at + 4 <= len {
        let alen = u16_at(at)? as usize;
        if alen < 4 || at + alen > len {
            break;
        }
        let data = &answer[at + 4..at + alen];
        match u16_at(at + 2)? {
            UNIX_DIAG_PEER if data.len() >= 4 => {
                let p = u32::from_ne_bytes(data[..4].try_into().ok()?);
                peer = (p != 0).then_some(u64::from(p));
            }
            UNIX_DIAG_NAME if !data.is_empty() => {
                name = Some(match data.split_first() {
                    Some((0, rest)) => [b"@", rest].concat(),
                    _ => data.split(|&b| b == 0).next().unwrap_or(data).to_vec(),
                });
            }
            _ => {}
        }
        at += (alen + 3) & !3;
    }
    Some((peer, name))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:AEBB 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 219775 1 0000000000000000 100 0 0 10 0
   1: 0100007F:BF32 0100007F:AEBB 01 00000000:00000000 00:00000000 00000000     0        0 219776 1 0000000000000000 20 4 30 10 -1
";
    const TCP6: &str = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:A7CF 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 219783 1 0000000000000000 100 0 0 10 0
";
    const UNIX: &str = "Num       RefCount Protocol Flags    Type St Inode Path
0000000000000000: 00000002 00000000 00010000 0001 01 219779 /tmp/fd test.sock
0000000000000000: 00000003 00000000 00000000 0001 03 219777
0000000000000000: 00000002 00000000 00010000 0001 01 20001 @abstract
";

    #[test]
    fn proc_net_tables_from_fixed_text() {
        let rows = parse_inet(TCP);
        assert_eq!(rows.len(), 2);
        assert_eq!(
            inet_text("TCP", rows[0].1, rows[0].2),
            "TCP:[127.0.0.1:44731]"
        );
        assert_eq!(rows[1].0, 219776);
        assert_eq!(
            inet_text("TCP", rows[1].1, rows[1].2),
            "TCP:[127.0.0.1:48946->127.0.0.1:44731]"
        );
        let v6 = parse_inet(TCP6);
        assert_eq!(
            (v6[0].0, inet_text("TCPv6", v6[0].1, v6[0].2)),
            (219783, "TCPv6:[[::1]:42959]".to_string())
        );
        let u = parse_unix(UNIX);
        assert_eq!(
            u,
            vec![
                (219779, Some(b"/tmp/fd test.sock".to_vec())),
                (219777, None),
                (20001, Some(b"@abstract".to_vec())),
            ]
        );
        assert!(parse_inet("garbage\n  0: zz:zz 1:1 0A").is_empty());
        assert!(parse_unix("\n\nx").is_empty());
    }

    #[test]
    fn unix_diag_answers() {
        let req = unix_diag_request(225547);
        assert_eq!(u32::from_ne_bytes(req[24..28].try_into().unwrap()), 225547);
        // nlmsghdr, unix_diag_msg, UNIX_DIAG_NAME "@x" (abstract, 3 bytes padded to 4),
        // UNIX_DIAG_PEER 225548.
        let mut a = Vec::new();
        a.extend(48u32.to_ne_bytes());
        a.extend(20u16.to_ne_bytes());
        a.extend([0u8; 10]);
        a.extend([libc::AF_UNIX as u8, 1, 1, 0]);
        a.extend(225547u32.to_ne_bytes());
        a.extend([0u8; 8]);
        a.extend(7u16.to_ne_bytes());
        a.extend(0u16.to_ne_bytes());
        a.extend([0, b'x', b'y', 0]);
        a.extend(8u16.to_ne_bytes());
        a.extend(2u16.to_ne_bytes());
        a.extend(225548u32.to_ne_bytes());
        assert_eq!(
            parse_unix_diag(&a, 225547),
            Some((Some(225548), Some(b"@xy".to_vec())))
        );
        assert_eq!(parse_unix_diag(&a, 1), None);
        assert_eq!(parse_unix_diag(&a[..20], 225547), None);
        for cut in 0..a.len() {
            let _ = parse_unix_diag(&a[..cut], 225547);
        }
    }

    #[test]
    fn decorations_in_strace_spelling() {
        assert_eq!(link_text(b"/etc/passwd"), "/etc/passwd");
        assert_eq!(
            link_text(b"/tmp/a<b>\x1b[2J\n"),
            "/tmp/a\\74b\\76\\33[2J\\n"
        );
        assert_eq!(socket_inode(b"socket:[12345]"), Some(12345));
        assert_eq!(socket_inode(b"pipe:[12345]"), None);
        assert_eq!(
            unix_text("UNIX-STREAM", 7, Some(8), None),
            "UNIX-STREAM:[7->8]"
        );
        assert_eq!(
            unix_text("UNIX-STREAM", 7, None, Some(b"/run/\"x\"")),
            "UNIX-STREAM:[7,\"/run/\\\"x\\\"\"]"
        );
    }
}
