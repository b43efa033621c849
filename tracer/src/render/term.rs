//! Text that came from elsewhere (process and thread names, cgroup paths, what a user
//! typed) made safe for a terminal: control characters are written as escapes, as strace
//! does (`\n`, `\33`), so a name cannot move the cursor, clear the screen or forge a line.
use std::borrow::Cow;

/// `s` with every control character escaped, and backslashes doubled so that an escape
/// cannot be forged either.
pub fn printable(s: &str) -> Cow<'_, str> {
    if !s.chars().any(|c| c.is_control() || c == '\\') {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            // C0 and DEL as octal, as strace writes them (ESC is \33).
            c if (c as u32) < 0x80 && c.is_control() => out.push_str(&format!("\\{:o}", c as u32)),
            // C1 controls (U+0080..U+009F): some terminals act on them too.
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::printable;

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(printable("nginx: worker"), "nginx: worker");
        assert!(matches!(printable("plain"), std::borrow::Cow::Borrowed(_)));
        assert_eq!(
            printable("\u{1b}[2J\u{1b}[Hfake\nok"),
            "\\33[2J\\33[Hfake\\nok"
        );
        assert_eq!(printable("a\tb\rc\u{7f}d\u{0}"), "a\\tb\\rc\\177d\\0");
        assert_eq!(printable("x\u{9b}31m"), "x\\u{9b}31m");
        assert_eq!(printable("C:\\path"), "C:\\\\path");
        assert_eq!(printable("naïve ünïcode"), "naïve ünïcode");
    }
}
