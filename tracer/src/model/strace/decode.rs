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
