//! Decoders of raw syscall arguments and results into strace's spelling. Pure functions:
//! the flag values come from the `libc` crate (the kernel's uapi values), errno names from
//! the `syscalls` crate and their messages from the C library (`nix`'s `strerror`), which
//! is where strace takes them from.

/// Flags in the order strace prints them (ascending values), each as (bits, name).
type Flags = &'static [(u64, &'static str)];

/// `bits` as `A|B|C`, with what no name covers as a trailing hex number; `zero` when 0.
pub fn flags(bits: u64, names: Flags, zero: &str) -> String {
    if bits == 0 {
        return zero.to_string();
    }
    let mut out: Vec<String> = Vec::new();
    let mut left = bits;
    for &(b, name) in names {
        if b != 0 && left & b == b {
            out.push(name.to_string());
            left &= !b;
        }
    }
    if left != 0 {
        out.push(format!("{left:#x}"));
    }
    out.join("|")
}

const OPEN_FLAGS: Flags = &[
    (libc::O_CREAT as u64, "O_CREAT"),
    (libc::O_EXCL as u64, "O_EXCL"),
    (libc::O_NOCTTY as u64, "O_NOCTTY"),
    (libc::O_TRUNC as u64, "O_TRUNC"),
    (libc::O_APPEND as u64, "O_APPEND"),
    (libc::O_NONBLOCK as u64, "O_NONBLOCK"),
    // O_SYNC is __O_SYNC|O_DSYNC: tried first, as strace does.
    (libc::O_SYNC as u64, "O_SYNC"),
    (libc::O_DSYNC as u64, "O_DSYNC"),
    (libc::O_ASYNC as u64, "O_ASYNC"),
    (libc::O_DIRECT as u64, "O_DIRECT"),
    // The kernel's value (libc's is 0 on 64-bit targets).
    (0o100000, "O_LARGEFILE"),
    // O_TMPFILE is __O_TMPFILE|O_DIRECTORY: tried before O_DIRECTORY.
    (libc::O_TMPFILE as u64, "O_TMPFILE"),
    (libc::O_DIRECTORY as u64, "O_DIRECTORY"),
    (libc::O_NOFOLLOW as u64, "O_NOFOLLOW"),
    (libc::O_NOATIME as u64, "O_NOATIME"),
    (libc::O_CLOEXEC as u64, "O_CLOEXEC"),
    (libc::O_PATH as u64, "O_PATH"),
];

/// `open`'s flags: the access mode, then the flags (`O_RDONLY|O_CLOEXEC`).
pub fn open_flags(v: u64) -> String {
    let v = v & 0xffff_ffff;
    let mode = match v & libc::O_ACCMODE as u64 {
        0 => "O_RDONLY".to_string(),
        1 => "O_WRONLY".to_string(),
        2 => "O_RDWR".to_string(),
        m => format!("{m:#x}"),
    };
    let rest = v & !(libc::O_ACCMODE as u64);
    if rest == 0 {
        mode
    } else {
        format!("{mode}|{}", flags(rest, OPEN_FLAGS, "0"))
    }
}

/// The flags of `pipe2` and `dup3` (`O_CLOEXEC`, `O_NONBLOCK`): `0` when none, as strace.
pub fn fd_flags(v: u64) -> String {
    flags(v & 0xffff_ffff, OPEN_FLAGS, "0")
}

/// Whether `open`'s flags take a mode (`O_CREAT`, `O_TMPFILE`): strace prints it then only.
pub fn open_has_mode(v: u64) -> bool {
    v & libc::O_CREAT as u64 != 0 || v & libc::O_TMPFILE as u64 == libc::O_TMPFILE as u64
}

/// A directory descriptor: `AT_FDCWD` or the number.
pub fn dirfd(v: u64) -> String {
    let fd = v as i32;
    if fd == libc::AT_FDCWD {
        "AT_FDCWD".into()
    } else {
        fd.to_string()
    }
}

/// A descriptor (an int).
pub fn fd(v: u64) -> String {
    (v as i32).to_string()
}

/// A file mode, in octal with a leading 0 as strace prints it (`0644`).
pub fn mode(v: u64) -> String {
    match v & 0xffff_ffff {
        0 => "0".into(),
        m => format!("0{m:o}"),
    }
}

const ACCESS: Flags = &[
    (libc::R_OK as u64, "R_OK"),
    (libc::W_OK as u64, "W_OK"),
    (libc::X_OK as u64, "X_OK"),
];

/// `access`'s mode: `F_OK`, or `R_OK|W_OK|X_OK`.
pub fn access_mode(v: u64) -> String {
    flags(v & 0xffff_ffff, ACCESS, "F_OK")
}

const AT_FLAGS: Flags = &[
    (libc::AT_SYMLINK_NOFOLLOW as u64, "AT_SYMLINK_NOFOLLOW"),
    (libc::AT_REMOVEDIR as u64, "AT_REMOVEDIR"),
    (libc::AT_SYMLINK_FOLLOW as u64, "AT_SYMLINK_FOLLOW"),
    (libc::AT_NO_AUTOMOUNT as u64, "AT_NO_AUTOMOUNT"),
    (libc::AT_EMPTY_PATH as u64, "AT_EMPTY_PATH"),
];

/// The `AT_*` flags of the `*at` calls.
pub fn at_flags(v: u64) -> String {
    flags(v & 0xffff_ffff, AT_FLAGS, "0")
}

const RENAME: Flags = &[
    (libc::RENAME_NOREPLACE as u64, "RENAME_NOREPLACE"),
    (libc::RENAME_EXCHANGE as u64, "RENAME_EXCHANGE"),
    (libc::RENAME_WHITEOUT as u64, "RENAME_WHITEOUT"),
];

pub fn rename_flags(v: u64) -> String {
    flags(v & 0xffff_ffff, RENAME, "0")
}

const PROT: Flags = &[
    (libc::PROT_READ as u64, "PROT_READ"),
    (libc::PROT_WRITE as u64, "PROT_WRITE"),
    (libc::PROT_EXEC as u64, "PROT_EXEC"),
    (libc::PROT_GROWSDOWN as u64, "PROT_GROWSDOWN"),
    (libc::PROT_GROWSUP as u64, "PROT_GROWSUP"),
];

/// `mmap`/`mprotect`'s protection: `PROT_NONE`, or `PROT_READ|PROT_WRITE`.
pub fn prot(v: u64) -> String {
    flags(v & 0xffff_ffff, PROT, "PROT_NONE")
}

const MAP: Flags = &[
    (libc::MAP_FIXED as u64, "MAP_FIXED"),
    (libc::MAP_ANONYMOUS as u64, "MAP_ANONYMOUS"),
    (libc::MAP_32BIT as u64, "MAP_32BIT"),
    (libc::MAP_GROWSDOWN as u64, "MAP_GROWSDOWN"),
    (libc::MAP_DENYWRITE as u64, "MAP_DENYWRITE"),
    (libc::MAP_EXECUTABLE as u64, "MAP_EXECUTABLE"),
    (libc::MAP_LOCKED as u64, "MAP_LOCKED"),
    (libc::MAP_NORESERVE as u64, "MAP_NORESERVE"),
    (libc::MAP_POPULATE as u64, "MAP_POPULATE"),
    (libc::MAP_NONBLOCK as u64, "MAP_NONBLOCK"),
    (libc::MAP_STACK as u64, "MAP_STACK"),
    (libc::MAP_HUGETLB as u64, "MAP_HUGETLB"),
    (libc::MAP_SYNC as u64, "MAP_SYNC"),
    (libc::MAP_FIXED_NOREPLACE as u64, "MAP_FIXED_NOREPLACE"),
];

/// `mmap`'s flags: the mapping type, then the flags (`MAP_PRIVATE|MAP_ANONYMOUS`).
pub fn map_flags(v: u64) -> String {
    let v = v & 0xffff_ffff;
    let kind = match v & 0xf {
        1 => "MAP_SHARED".to_string(),
        2 => "MAP_PRIVATE".to_string(),
        3 => "MAP_SHARED_VALIDATE".to_string(),
        k => format!("{k:#x}"),
    };
    let rest = v & !0xf;
    if rest == 0 {
        kind
    } else {
        format!("{kind}|{}", flags(rest, MAP, "0"))
    }
}

/// A pointer: `NULL` or hex.
pub fn ptr(v: u64) -> String {
    if v == 0 {
        "NULL".into()
    } else {
        format!("{v:#x}")
    }
}

/// A number strace prints in hex (`0` as is).
pub fn hex(v: u64) -> String {
    if v == 0 {
        "0".into()
    } else {
        format!("{v:#x}")
    }
}

/// A signal number by name (`SIGTERM`), or the number.
pub fn signal(v: u64) -> String {
    let n = v as i32;
    if n == 0 {
        return "0".into();
    }
    match nix::sys::signal::Signal::try_from(n) {
        Ok(s) => s.as_str().to_string(),
        Err(_) => n.to_string(),
    }
}

/// A name for a value among `names` (an enumeration, not flags), else the number.
fn named(v: u64, names: Flags) -> String {
    names
        .iter()
        .find(|n| n.0 == v)
        .map_or_else(|| v.to_string(), |n| n.1.to_string())
}

const FAMILIES: Flags = &[
    (libc::AF_UNSPEC as u64, "AF_UNSPEC"),
    (libc::AF_UNIX as u64, "AF_UNIX"),
    (libc::AF_INET as u64, "AF_INET"),
    (libc::AF_AX25 as u64, "AF_AX25"),
    (libc::AF_IPX as u64, "AF_IPX"),
    (libc::AF_APPLETALK as u64, "AF_APPLETALK"),
    (libc::AF_NETROM as u64, "AF_NETROM"),
    (libc::AF_BRIDGE as u64, "AF_BRIDGE"),
    (libc::AF_ATMPVC as u64, "AF_ATMPVC"),
    (libc::AF_X25 as u64, "AF_X25"),
    (libc::AF_INET6 as u64, "AF_INET6"),
    (libc::AF_ROSE as u64, "AF_ROSE"),
    (libc::AF_DECnet as u64, "AF_DECnet"),
    (libc::AF_NETBEUI as u64, "AF_NETBEUI"),
    (libc::AF_SECURITY as u64, "AF_SECURITY"),
    (libc::AF_KEY as u64, "AF_KEY"),
    (libc::AF_NETLINK as u64, "AF_NETLINK"),
    (libc::AF_PACKET as u64, "AF_PACKET"),
    (libc::AF_ASH as u64, "AF_ASH"),
    (libc::AF_ECONET as u64, "AF_ECONET"),
    (libc::AF_ATMSVC as u64, "AF_ATMSVC"),
    (libc::AF_RDS as u64, "AF_RDS"),
    (libc::AF_SNA as u64, "AF_SNA"),
    (libc::AF_IRDA as u64, "AF_IRDA"),
    (libc::AF_PPPOX as u64, "AF_PPPOX"),
    (libc::AF_WANPIPE as u64, "AF_WANPIPE"),
    (libc::AF_LLC as u64, "AF_LLC"),
    (libc::AF_CAN as u64, "AF_CAN"),
    (libc::AF_TIPC as u64, "AF_TIPC"),
    (libc::AF_BLUETOOTH as u64, "AF_BLUETOOTH"),
    (libc::AF_IUCV as u64, "AF_IUCV"),
    (libc::AF_RXRPC as u64, "AF_RXRPC"),
    (libc::AF_ISDN as u64, "AF_ISDN"),
    (libc::AF_PHONET as u64, "AF_PHONET"),
    (libc::AF_IEEE802154 as u64, "AF_IEEE802154"),
    (libc::AF_CAIF as u64, "AF_CAIF"),
    (libc::AF_ALG as u64, "AF_ALG"),
    (libc::AF_NFC as u64, "AF_NFC"),
    (libc::AF_VSOCK as u64, "AF_VSOCK"),
    (libc::AF_XDP as u64, "AF_XDP"),
];

/// A socket domain / address family (`AF_INET`).
pub fn family(v: u64) -> String {
    named(v & 0xffff_ffff, FAMILIES)
}

const SOCK_TYPES: Flags = &[
    (libc::SOCK_STREAM as u64, "SOCK_STREAM"),
    (libc::SOCK_DGRAM as u64, "SOCK_DGRAM"),
    (libc::SOCK_RAW as u64, "SOCK_RAW"),
    (libc::SOCK_RDM as u64, "SOCK_RDM"),
    (libc::SOCK_SEQPACKET as u64, "SOCK_SEQPACKET"),
    (libc::SOCK_DCCP as u64, "SOCK_DCCP"),
    // Obsolete, and deprecated in libc; strace still names it.
    (10, "SOCK_PACKET"),
];

/// `SOCK_CLOEXEC` before `SOCK_NONBLOCK`, as strace prints them.
const SOCK_FLAGS: Flags = &[
    (libc::SOCK_CLOEXEC as u64, "SOCK_CLOEXEC"),
    (libc::SOCK_NONBLOCK as u64, "SOCK_NONBLOCK"),
];

/// `socket`'s type: the kind, then its flags (`SOCK_STREAM|SOCK_CLOEXEC`).
pub fn sock_type(v: u64) -> String {
    let v = v & 0xffff_ffff;
    let kind = named(v & 0xf, SOCK_TYPES);
    let rest = v & !0xf;
    if rest == 0 {
        kind
    } else {
        format!("{kind}|{}", flags(rest, SOCK_FLAGS, "0"))
    }
}

/// `accept4`'s flags.
pub fn sock_flags(v: u64) -> String {
    flags(v & 0xffff_ffff, SOCK_FLAGS, "0")
}

const IP_PROTOCOLS: Flags = &[
    (libc::IPPROTO_IP as u64, "IPPROTO_IP"),
    (libc::IPPROTO_ICMP as u64, "IPPROTO_ICMP"),
    (libc::IPPROTO_IGMP as u64, "IPPROTO_IGMP"),
    (libc::IPPROTO_TCP as u64, "IPPROTO_TCP"),
    (libc::IPPROTO_UDP as u64, "IPPROTO_UDP"),
    (libc::IPPROTO_IPV6 as u64, "IPPROTO_IPV6"),
    (libc::IPPROTO_ICMPV6 as u64, "IPPROTO_ICMPV6"),
    (libc::IPPROTO_SCTP as u64, "IPPROTO_SCTP"),
    (libc::IPPROTO_UDPLITE as u64, "IPPROTO_UDPLITE"),
    (libc::IPPROTO_RAW as u64, "IPPROTO_RAW"),
    (libc::IPPROTO_MPTCP as u64, "IPPROTO_MPTCP"),
];

const NETLINK_PROTOCOLS: Flags = &[
    (libc::NETLINK_ROUTE as u64, "NETLINK_ROUTE"),
    (libc::NETLINK_USERSOCK as u64, "NETLINK_USERSOCK"),
    (libc::NETLINK_FIREWALL as u64, "NETLINK_FIREWALL"),
    (libc::NETLINK_SOCK_DIAG as u64, "NETLINK_SOCK_DIAG"),
    (libc::NETLINK_NFLOG as u64, "NETLINK_NFLOG"),
    (libc::NETLINK_XFRM as u64, "NETLINK_XFRM"),
    (libc::NETLINK_SELINUX as u64, "NETLINK_SELINUX"),
    (libc::NETLINK_ISCSI as u64, "NETLINK_ISCSI"),
    (libc::NETLINK_AUDIT as u64, "NETLINK_AUDIT"),
    (libc::NETLINK_FIB_LOOKUP as u64, "NETLINK_FIB_LOOKUP"),
    (libc::NETLINK_CONNECTOR as u64, "NETLINK_CONNECTOR"),
    (libc::NETLINK_NETFILTER as u64, "NETLINK_NETFILTER"),
    (libc::NETLINK_IP6_FW as u64, "NETLINK_IP6_FW"),
    (libc::NETLINK_DNRTMSG as u64, "NETLINK_DNRTMSG"),
    (
        libc::NETLINK_KOBJECT_UEVENT as u64,
        "NETLINK_KOBJECT_UEVENT",
    ),
    (libc::NETLINK_GENERIC as u64, "NETLINK_GENERIC"),
    (libc::NETLINK_SCSITRANSPORT as u64, "NETLINK_SCSITRANSPORT"),
    (libc::NETLINK_ECRYPTFS as u64, "NETLINK_ECRYPTFS"),
    (libc::NETLINK_RDMA as u64, "NETLINK_RDMA"),
    (libc::NETLINK_CRYPTO as u64, "NETLINK_CRYPTO"),
];

/// `socket`'s protocol, named as its domain names it (the number for others).
pub fn protocol(domain: u64, v: u64) -> String {
    let v = v & 0xffff_ffff;
    match domain as i32 {
        libc::AF_INET | libc::AF_INET6 => named(v, IP_PROTOCOLS),
        libc::AF_NETLINK => named(v, NETLINK_PROTOCOLS),
        _ => v.to_string(),
    }
}

const MSG_FLAGS: Flags = &[
    (libc::MSG_OOB as u64, "MSG_OOB"),
    (libc::MSG_PEEK as u64, "MSG_PEEK"),
    (libc::MSG_DONTROUTE as u64, "MSG_DONTROUTE"),
    (libc::MSG_CTRUNC as u64, "MSG_CTRUNC"),
    (0x10, "MSG_PROXY"),
    (libc::MSG_TRUNC as u64, "MSG_TRUNC"),
    (libc::MSG_DONTWAIT as u64, "MSG_DONTWAIT"),
    (libc::MSG_EOR as u64, "MSG_EOR"),
    (libc::MSG_WAITALL as u64, "MSG_WAITALL"),
    (libc::MSG_FIN as u64, "MSG_FIN"),
    (libc::MSG_SYN as u64, "MSG_SYN"),
    (libc::MSG_CONFIRM as u64, "MSG_CONFIRM"),
    (libc::MSG_RST as u64, "MSG_RST"),
    (libc::MSG_ERRQUEUE as u64, "MSG_ERRQUEUE"),
    (libc::MSG_NOSIGNAL as u64, "MSG_NOSIGNAL"),
    (libc::MSG_MORE as u64, "MSG_MORE"),
    (libc::MSG_WAITFORONE as u64, "MSG_WAITFORONE"),
    (0x40000, "MSG_BATCH"),
    (libc::MSG_ZEROCOPY as u64, "MSG_ZEROCOPY"),
    (libc::MSG_FASTOPEN as u64, "MSG_FASTOPEN"),
    (libc::MSG_CMSG_CLOEXEC as u64, "MSG_CMSG_CLOEXEC"),
];

/// The flags of `send*` and `recv*`.
pub fn msg_flags(v: u64) -> String {
    flags(v & 0xffff_ffff, MSG_FLAGS, "0")
}

const CLONE: Flags = &[
    (libc::CLONE_VM as u64, "CLONE_VM"),
    (libc::CLONE_FS as u64, "CLONE_FS"),
    (libc::CLONE_FILES as u64, "CLONE_FILES"),
    (libc::CLONE_SIGHAND as u64, "CLONE_SIGHAND"),
    (libc::CLONE_PIDFD as u64, "CLONE_PIDFD"),
    (libc::CLONE_PTRACE as u64, "CLONE_PTRACE"),
    (libc::CLONE_VFORK as u64, "CLONE_VFORK"),
    (libc::CLONE_PARENT as u64, "CLONE_PARENT"),
    (libc::CLONE_THREAD as u64, "CLONE_THREAD"),
    (libc::CLONE_NEWNS as u64, "CLONE_NEWNS"),
    (libc::CLONE_SYSVSEM as u64, "CLONE_SYSVSEM"),
    (libc::CLONE_SETTLS as u64, "CLONE_SETTLS"),
    (libc::CLONE_PARENT_SETTID as u64, "CLONE_PARENT_SETTID"),
    (libc::CLONE_CHILD_CLEARTID as u64, "CLONE_CHILD_CLEARTID"),
    (libc::CLONE_DETACHED as u64, "CLONE_DETACHED"),
    (libc::CLONE_UNTRACED as u64, "CLONE_UNTRACED"),
    (libc::CLONE_CHILD_SETTID as u64, "CLONE_CHILD_SETTID"),
    (libc::CLONE_NEWCGROUP as u64, "CLONE_NEWCGROUP"),
    (libc::CLONE_NEWUTS as u64, "CLONE_NEWUTS"),
    (libc::CLONE_NEWIPC as u64, "CLONE_NEWIPC"),
    (libc::CLONE_NEWUSER as u64, "CLONE_NEWUSER"),
    (libc::CLONE_NEWPID as u64, "CLONE_NEWPID"),
    (libc::CLONE_NEWNET as u64, "CLONE_NEWNET"),
    (libc::CLONE_IO as u64, "CLONE_IO"),
];

/// `clone`'s flags: the `CLONE_*` bits, then the exit signal in the low byte
/// (`CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID|SIGCHLD`).
pub fn clone_flags(v: u64) -> String {
    let v = v & 0xffff_ffff;
    let sig = v & 0xff;
    let bits = v & !0xff;
    match (bits, sig) {
        (0, 0) => "0".into(),
        (0, s) => signal(s),
        (b, 0) => flags(b, CLONE, "0"),
        (b, s) => format!("{}|{}", flags(b, CLONE, "0"), signal(s)),
    }
}

/// x86_64 `clone`'s arguments as strace names them: `child_stack=NULL,
/// flags=...|SIGCHLD`, then the thread-id and TLS pointers its flags use.
pub fn clone_args(raw: &[u64]) -> Vec<String> {
    let arg = |i: usize| raw.get(i).copied().unwrap_or(0);
    let f = arg(0);
    let has = |b: i32| f & b as u64 != 0;
    let mut out = vec![
        format!("child_stack={}", ptr(arg(1))),
        format!("flags={}", clone_flags(f)),
    ];
    if has(libc::CLONE_PARENT_SETTID) {
        out.push(format!("parent_tid={}", ptr(arg(2))));
    }
    if has(libc::CLONE_SETTLS) {
        out.push(format!("tls={}", ptr(arg(4))));
    }
    if has(libc::CLONE_CHILD_SETTID) || has(libc::CLONE_CHILD_CLEARTID) {
        out.push(format!("child_tidptr={}", ptr(arg(3))));
    }
    out
}

/// A socket address as strace prints it (`{sa_family=AF_INET, sin_port=htons(80),
/// sin_addr=inet_addr("127.0.0.1")}`); None when too short to have a family (strace
/// shows the pointer then).
pub fn sockaddr(b: &[u8]) -> Option<String> {
    let fam = u16::from_ne_bytes([*b.first()?, *b.get(1)?]);
    let name = family(fam as u64);
    let rest = &b[2..];
    let be16 = |i: usize| rest.get(i..i + 2).map(|x| u16::from_be_bytes([x[0], x[1]]));
    let be32 = |i: usize| {
        rest.get(i..i + 4)
            .map(|x| u32::from_be_bytes([x[0], x[1], x[2], x[3]]))
    };
    let ne32 = |i: usize| {
        rest.get(i..i + 4)
            .map(|x| u32::from_ne_bytes([x[0], x[1], x[2], x[3]]))
    };
    let body = match fam as i32 {
        libc::AF_UNIX if rest.is_empty() => String::new(),
        libc::AF_UNIX => {
            // Abstract (a leading NUL: every byte counts) or a path to its NUL.
            let (at, path) = match rest.split_first() {
                Some((0, name)) => ("@", name),
                _ => ("", rest.split(|&c| c == 0).next().unwrap_or(rest)),
            };
            format!(", sun_path={at}{}", quote(path, false))
        }
        libc::AF_INET if rest.len() >= 6 => {
            let ip = std::net::Ipv4Addr::from(be32(2)?);
            format!(
                ", sin_port=htons({}), sin_addr=inet_addr(\"{ip}\")",
                be16(0)?
            )
        }
        libc::AF_INET6 if rest.len() >= 22 => {
            let ip: [u8; 16] = rest[6..22].try_into().ok()?;
            let scope = ne32(22).map_or(String::new(), |s| format!(", sin6_scope_id={s}"));
            format!(
                ", sin6_port=htons({}), sin6_flowinfo=htonl({}), inet_pton(AF_INET6, \"{}\", &sin6_addr){scope}",
                be16(0)?,
                be32(2)?,
                std::net::Ipv6Addr::from(ip)
            )
        }
        libc::AF_NETLINK if rest.len() >= 10 => {
            let pad = u16::from_ne_bytes([rest[0], rest[1]]);
            let pad = if pad != 0 {
                format!(", nl_pad={pad:#x}")
            } else {
                String::new()
            };
            format!("{pad}, nl_pid={}, nl_groups={:08x}", ne32(2)?, ne32(6)?)
        }
        _ => format!(", sa_data={}", quote(rest, false)),
    };
    Some(format!("{{sa_family={name}{body}}}"))
}

/// `execve`'s argv as strace prints it: `["ls", "-l"]`, an entry cut at its bound
/// followed by `...`, an unreadable one as its error, and `...` as the last element
/// when more entries follow than were captured.
pub fn argv<'a>(
    entries: impl Iterator<Item = Result<(&'a [u8], bool), i32>>,
    more: bool,
) -> String {
    let mut shown: Vec<String> = entries
        .map(|e| match e {
            Ok((bytes, cut)) => quote(bytes, cut),
            Err(_) => "???".to_string(),
        })
        .collect();
    if more {
        shown.push("...".into());
    }
    format!("[{}]", shown.join(", "))
}

/// The kernel's restart codes, which strace prints with its own words (they never reach
/// the program, and the C library has no message for them).
const RESTARTS: &[(i32, &str, &str)] = &[
    (512, "ERESTARTSYS", "To be restarted if SA_RESTART is set"),
    (513, "ERESTARTNOINTR", "To be restarted"),
    (514, "ERESTARTNOHAND", "To be restarted if no handler"),
    (516, "ERESTART_RESTARTBLOCK", "Interrupted by signal"),
];

/// An errno's name and message (`ENOENT`, `No such file or directory`).
pub fn errno(e: i32) -> (String, String) {
    if let Some(&(_, name, msg)) = RESTARTS.iter().find(|r| r.0 == e) {
        return (name.into(), msg.into());
    }
    let name = syscalls::Errno::new(e)
        .name()
        .map_or_else(|| format!("E{e}"), str::to_string);
    // The C library's message (strerror, through std), as strace prints it: "Bad file
    // descriptor", where nix's table has the kernel header's "Bad file number".
    let msg = std::io::Error::from_raw_os_error(e).to_string();
    let msg = msg
        .strip_suffix(&format!(" (os error {e})"))
        .map_or_else(|| msg.clone(), str::to_string);
    (name, msg)
}

/// The errno named `name` (`ENOENT`), if there is one.
pub fn errno_by_name(name: &str) -> Option<i32> {
    (1..4096).find(|&e| syscalls::Errno::new(e).name() == Some(name))
}

/// A return value: `-1 ENOENT (No such file or directory)` for a failure (`?` for the
/// kernel's restart codes, as strace), else the value, in hex for calls that return
/// addresses.
pub fn ret(v: i64, addr: bool) -> String {
    if (-4095..0).contains(&v) {
        let e = (-v) as i32;
        let (name, msg) = errno(e);
        let shown = if RESTARTS.iter().any(|r| r.0 == e) {
            "?"
        } else {
            "-1"
        };
        return format!("{shown} {name} ({msg})");
    }
    if addr {
        format!("{:#x}", v as u64)
    } else {
        v.to_string()
    }
}

/// Bytes as strace quotes a string: `"..."`, with `\t \n \v \f \r \" \\` named, other
/// bytes outside printable ASCII in octal (the shortest form unless a digit follows), and
/// `...` after the closing quote when the string was cut.
pub fn quote(bytes: &[u8], cut: bool) -> String {
    let mut out = String::with_capacity(bytes.len() + 2);
    out.push('"');
    escape_into(bytes, b"", &mut out);
    out.push('"');
    if cut {
        out.push_str("...");
    }
    out
}

/// Bytes escaped as [`quote`] does, without the quotes, and `also` escaped in octal too:
/// strace's `-y` shows a descriptor's path as `3</etc/passwd>`, with `<` and `>` escaped.
pub fn escape_into(bytes: &[u8], also: &[u8], out: &mut String) {
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'\t' => out.push_str("\\t"),
            b'\n' => out.push_str("\\n"),
            0x0b => out.push_str("\\v"),
            0x0c => out.push_str("\\f"),
            b'\r' => out.push_str("\\r"),
            0x20..=0x7e if !also.contains(&b) => out.push(b as char),
            _ => {
                let next_digit = bytes.get(i + 1).is_some_and(|n| (b'0'..=b'7').contains(n));
                if next_digit {
                    out.push_str(&format!("\\{b:03o}"));
                } else {
                    out.push_str(&format!("\\{b:o}"));
                }
            }
        }
    }
}

/// A duration as strace's `-T` prints it: seconds with six decimals.
pub fn duration(ns: u64) -> impl std::fmt::Display {
    struct Secs(u64);
    impl std::fmt::Display for Secs {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(
                f,
                "{}.{:06}",
                self.0 / 1_000_000_000,
                (self.0 % 1_000_000_000) / 1000
            )
        }
    }
    Secs(ns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_flags_as_strace() {
        assert_eq!(
            open_flags((libc::O_RDONLY | libc::O_CLOEXEC) as u64),
            "O_RDONLY|O_CLOEXEC"
        );
        assert_eq!(
            open_flags((libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC) as u64),
            "O_WRONLY|O_CREAT|O_TRUNC"
        );
        assert_eq!(open_flags(libc::O_RDWR as u64), "O_RDWR");
        assert_eq!(
            open_flags(
                (libc::O_RDONLY | libc::O_NONBLOCK | libc::O_DIRECTORY | libc::O_CLOEXEC) as u64
            ),
            "O_RDONLY|O_NONBLOCK|O_DIRECTORY|O_CLOEXEC"
        );
        assert_eq!(
            open_flags((libc::O_RDWR | libc::O_TMPFILE) as u64),
            "O_RDWR|O_TMPFILE"
        );
        assert_eq!(open_flags(libc::O_SYNC as u64), "O_RDONLY|O_SYNC");
        assert_eq!(open_flags(0x8000_0000), "O_RDONLY|0x80000000");
        assert!(open_has_mode(libc::O_CREAT as u64));
        assert!(open_has_mode(libc::O_TMPFILE as u64));
        assert!(!open_has_mode(libc::O_DIRECTORY as u64));
    }

    #[test]
    fn small_decoders() {
        assert_eq!(dirfd(-100i64 as u64), "AT_FDCWD");
        assert_eq!(dirfd(3), "3");
        assert_eq!(fd(u64::MAX), "-1");
        assert_eq!(mode(0o644), "0644");
        assert_eq!(mode(0), "0");
        assert_eq!(access_mode(0), "F_OK");
        assert_eq!(access_mode(6), "R_OK|W_OK");
        assert_eq!(at_flags(0), "0");
        assert_eq!(at_flags(0x100), "AT_SYMLINK_NOFOLLOW");
        assert_eq!(at_flags(0x1100), "AT_SYMLINK_NOFOLLOW|AT_EMPTY_PATH");
        assert_eq!(rename_flags(1), "RENAME_NOREPLACE");
        assert_eq!(prot(0), "PROT_NONE");
        assert_eq!(prot(3), "PROT_READ|PROT_WRITE");
        assert_eq!(map_flags(0x22), "MAP_PRIVATE|MAP_ANONYMOUS");
        assert_eq!(map_flags(0x812), "MAP_PRIVATE|MAP_FIXED|MAP_DENYWRITE");
        assert_eq!(ptr(0), "NULL");
        assert_eq!(ptr(0x7ffd_1000), "0x7ffd1000");
        assert_eq!(hex(0x1000), "0x1000");
        assert_eq!(signal(15), "SIGTERM");
        assert_eq!(signal(0), "0");
        assert_eq!(duration(12_345).to_string(), "0.000012");
        assert_eq!(duration(2_000_001_000).to_string(), "2.000001");
    }

    #[test]
    fn errnos_and_returns() {
        assert_eq!(ret(-2, false), "-1 ENOENT (No such file or directory)");
        // The C library's words, as strace prints them (not the kernel header's).
        assert_eq!(ret(-9, false), "-1 EBADF (Bad file descriptor)");
        assert_eq!(ret(-13, false), "-1 EACCES (Permission denied)");
        assert_eq!(ret(3, false), "3");
        assert_eq!(ret(0x7f00_0000_0000, true), "0x7f0000000000");
        assert_eq!(
            ret(-512, false),
            "? ERESTARTSYS (To be restarted if SA_RESTART is set)"
        );
        assert_eq!(errno_by_name("ENOENT"), Some(2));
        assert_eq!(errno_by_name("EACCES"), Some(13));
        assert_eq!(errno_by_name("ENOPE"), None);
    }

    #[test]
    fn sockets_as_strace() {
        assert_eq!(family(2), "AF_INET");
        assert_eq!(family(99), "99");
        assert_eq!(sock_type(0x80001), "SOCK_STREAM|SOCK_CLOEXEC");
        assert_eq!(sock_type(0x80802), "SOCK_DGRAM|SOCK_CLOEXEC|SOCK_NONBLOCK");
        assert_eq!(sock_type(3), "SOCK_RAW");
        assert_eq!(sock_flags(0), "0");
        assert_eq!(protocol(2, 0), "IPPROTO_IP");
        assert_eq!(protocol(10, 17), "IPPROTO_UDP");
        assert_eq!(protocol(16, 0), "NETLINK_ROUTE");
        assert_eq!(protocol(1, 0), "0");
        assert_eq!(msg_flags(0x4040), "MSG_DONTWAIT|MSG_NOSIGNAL");
        assert_eq!(msg_flags(0), "0");
    }

    #[test]
    fn socket_addresses_as_strace() {
        // What strace 6.1 printed here for the same bytes.
        let inet = [2, 0, 0x1f, 0x90, 127, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(
            sockaddr(&inet).unwrap(),
            "{sa_family=AF_INET, sin_port=htons(8080), sin_addr=inet_addr(\"127.0.0.1\")}"
        );
        let mut six = [0u8; 28];
        six[0] = 10;
        six[3] = 9;
        six[23] = 1;
        assert_eq!(
            sockaddr(&six).unwrap(),
            "{sa_family=AF_INET6, sin6_port=htons(9), sin6_flowinfo=htonl(0), inet_pton(AF_INET6, \"::1\", &sin6_addr), sin6_scope_id=0}"
        );
        let mut unix = vec![1, 0];
        unix.extend_from_slice(b"/nonexistent/sock\0");
        assert_eq!(
            sockaddr(&unix).unwrap(),
            "{sa_family=AF_UNIX, sun_path=\"/nonexistent/sock\"}"
        );
        let mut abs = vec![1, 0, 0];
        abs.extend_from_slice(b"abstract-name");
        assert_eq!(
            sockaddr(&abs).unwrap(),
            "{sa_family=AF_UNIX, sun_path=@\"abstract-name\"}"
        );
        assert_eq!(sockaddr(&[1, 0]).unwrap(), "{sa_family=AF_UNIX}");
        let nl = [16, 0, 0xcf, 0xee, 0, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(
            sockaddr(&nl).unwrap(),
            "{sa_family=AF_NETLINK, nl_pad=0xeecf, nl_pid=0, nl_groups=00000000}"
        );
        assert_eq!(
            sockaddr(&[0, 0, b'a']).unwrap(),
            "{sa_family=AF_UNSPEC, sa_data=\"a\"}"
        );
        assert_eq!(sockaddr(&[2]), None);
        // Too short for its family: the bytes.
        assert_eq!(
            sockaddr(&[2, 0, 1]).unwrap(),
            "{sa_family=AF_INET, sa_data=\"\\1\"}"
        );
    }

    #[test]
    fn argv_and_clone_as_strace() {
        let e: Vec<Result<(&[u8], bool), i32>> = vec![
            Ok((b"x", false)),
            Ok((b"a\tb", false)),
            Ok((b"aaa", true)),
            Err(14),
        ];
        assert_eq!(
            argv(e.clone().into_iter(), false),
            "[\"x\", \"a\\tb\", \"aaa\"..., ???]"
        );
        assert_eq!(argv(e.into_iter().take(1), true), "[\"x\", ...]");
        assert_eq!(argv(std::iter::empty(), false), "[]");
        assert_eq!(
            clone_flags(0x1200011),
            "CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID|SIGCHLD"
        );
        assert_eq!(clone_flags(0), "0");
        assert_eq!(
            clone_args(&[0x1200011, 0, 0, 0x7f00, 0]),
            [
                "child_stack=NULL",
                "flags=CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID|SIGCHLD",
                "child_tidptr=0x7f00"
            ]
        );
    }

    #[test]
    fn strings_quoted_as_strace() {
        assert_eq!(quote(b"/etc/passwd", false), "\"/etc/passwd\"");
        assert_eq!(quote(b"a\"b\\c", false), "\"a\\\"b\\\\c\"");
        assert_eq!(quote(b"\x1b[2J\n", false), "\"\\33[2J\\n\"");
        // Octal is padded to three digits when a digit follows.
        assert_eq!(quote(b"\x01" as &[u8], false), "\"\\1\"");
        assert_eq!(quote(b"\x012", false), "\"\\0012\"");
        assert_eq!(quote("é".as_bytes(), false), "\"\\303\\251\"");
        assert_eq!(quote(b"long", true), "\"long\"...");
    }
}
