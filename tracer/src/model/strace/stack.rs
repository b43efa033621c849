//! `--stack`: a streamed call's user stack as strace's `-k` prints it, one line per frame
//! after the call's (` > /usr/lib/x86_64-linux-gnu/libc.so.6(__read+0x12) [0x7f3a...]`),
//! and as objects in the call's JSON. Pure: the frames come in symbolized (by
//! `collect::stack`) or not.
use serde::Serialize;

/// One frame: its address in the process, and what it is when that was found out.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Frame {
    pub addr: u64,
    /// The function (demangled), or None.
    pub symbol: Option<String>,
    /// Bytes from the function's start.
    pub offset: Option<u64>,
    /// The file mapped there (or a perf map, for a JIT frame), or None.
    pub module: Option<String>,
    /// Why the frame is not named (`process gone`, `not in a mapping`, ...), or None.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unknown: Option<String>,
}

impl Frame {
    /// A frame not named, and why.
    pub fn unknown(addr: u64, why: &str) -> Frame {
        Frame {
            addr,
            symbol: None,
            offset: None,
            module: None,
            unknown: Some(why.to_string()),
        }
    }

    /// A frame named `symbol+offset` in `module`.
    #[cfg(test)]
    pub fn named(addr: u64, symbol: &str, offset: u64, module: &str) -> Frame {
        Frame {
            addr,
            symbol: Some(symbol.into()),
            offset: Some(offset),
            module: Some(module.into()),
            unknown: None,
        }
    }

    /// The frame's line (without a newline), as strace -k spells it where it can:
    /// `MODULE(SYMBOL+0xOFF) [0xADDR]`, `MODULE() [0xADDR]` without a symbol,
    /// `? [0xADDR] (WHY)` when nothing is known. strace puts the file offset in the
    /// brackets; this is the address in the process (what the kernel's walk gave).
    pub fn write_line(&self, out: &mut String) {
        use std::fmt::Write;
        let printable = crate::render::term::printable;
        out.push_str(" > ");
        match (&self.module, &self.symbol) {
            (Some(m), Some(s)) => {
                let _ = write!(
                    out,
                    "{}({}+{:#x})",
                    printable(m),
                    printable(s),
                    self.offset.unwrap_or(0)
                );
            }
            (Some(m), None) => {
                let _ = write!(out, "{}()", printable(m));
            }
            (None, Some(s)) => {
                let _ = write!(out, "?({}+{:#x})", printable(s), self.offset.unwrap_or(0));
            }
            (None, None) => out.push('?'),
        }
        let _ = write!(out, " [{:#x}]", self.addr);
        if let Some(why) = &self.unknown {
            let _ = write!(out, " ({})", printable(why));
        }
    }
}

/// What a stack could not be read as: the kernel's errno (the walk failed), as the line
/// after the call says it.
pub fn not_taken_line(errno: &str, message: &str, out: &mut String) {
    out.push_str(" > stack not taken: ");
    out.push_str(errno);
    out.push_str(" (");
    out.push_str(message);
    out.push(')');
}

/// Turns a process's stack into frames: the stream's reader gives it one (`collect::stack`
/// reads the process's mappings, symbols and perf map).
pub trait Symbolize {
    /// The frames of `addrs` (innermost first) in process `tgid`, one per address, in
    /// order, for a call that ended at `after_ns` (CLOCK_MONOTONIC).
    fn frames(&mut self, tgid: u32, addrs: &[u64], after_ns: u64) -> Vec<Frame>;
}

/// The addresses of a stack worth showing: the kernel's frame-pointer walk goes on through
/// a frame pointer that code built without them left in the register, and what it reads
/// there is often 0 or a small number; the stack is cut at the first address that cannot
/// be code (below the lowest page a process can map).
pub fn walked(addrs: &[u64]) -> &[u64] {
    let end = addrs
        .iter()
        .position(|&a| a < 0x1000)
        .unwrap_or(addrs.len());
    &addrs[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(f: &Frame) -> String {
        let mut s = String::new();
        f.write_line(&mut s);
        s
    }

    #[test]
    fn frames_are_spelled_as_strace_k_spells_them() {
        let mut f = Frame::named(
            0x7f00_0000_1234,
            "__GI___libc_read",
            0x12,
            "/usr/lib/x86_64-linux-gnu/libc.so.6",
        );
        assert_eq!(
            line(&f),
            " > /usr/lib/x86_64-linux-gnu/libc.so.6(__GI___libc_read+0x12) [0x7f0000001234]"
        );
        f.symbol = None;
        assert_eq!(
            line(&f),
            " > /usr/lib/x86_64-linux-gnu/libc.so.6() [0x7f0000001234]"
        );
        assert_eq!(
            line(&Frame::unknown(0x10, "process gone")),
            " > ? [0x10] (process gone)"
        );
        // A name is escaped as the line's other text is.
        f.module = None;
        f.symbol = Some("evil\x1b[2J".into());
        assert!(!line(&f).contains('\x1b'));
        let mut s = String::new();
        not_taken_line("EFAULT", "Bad address", &mut s);
        assert_eq!(s, " > stack not taken: EFAULT (Bad address)");
    }

    #[test]
    fn a_walk_is_cut_where_it_left_the_code() {
        assert_eq!(walked(&[0x7f00, 0x5000, 0, 0x7f10]), &[0x7f00, 0x5000]);
        assert_eq!(walked(&[0x7f00, 0x6c]), &[0x7f00]);
        assert_eq!(walked(&[0x7f00]), &[0x7f00]);
        assert!(walked(&[]).is_empty());
    }

    #[test]
    fn frames_serialize_with_their_address_symbol_and_module() {
        let f = Frame::named(16, "main", 4, "/bin/x");
        assert_eq!(
            serde_json::to_string(&f).unwrap(),
            r#"{"addr":16,"symbol":"main","offset":4,"module":"/bin/x"}"#
        );
        assert_eq!(
            serde_json::to_value(Frame::unknown(1, "x")).unwrap()["unknown"],
            "x"
        );
    }
}
