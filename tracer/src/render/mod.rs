//! Turning a [`Report`] into bytes: text for people, JSON for programs; and the live
//! view's state and layout (`tui`).
pub mod anatomy;
pub mod json;
pub mod term;
pub mod text;
pub mod tui;

use std::io::Write;

use crate::{
    cli::Format,
    model::{
        Report,
        memory::{FdConcern, FdWarning},
    },
};

/// Writes one report in the chosen format.
pub fn write(out: &mut dyn Write, format: Format, report: &Report) -> std::io::Result<()> {
    match format {
        Format::Text => text::write(out, report),
        Format::Json => json::write(out, report),
    }?;
    out.flush()
}

/// A descriptor warning in words, as both formats show it.
impl std::fmt::Display for FdWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, c) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            match *c {
                FdConcern::NearLimit { peak, limit, now } => {
                    write!(
                        f,
                        "open descriptors reached {peak} of the limit {limit} ({:.0}%)",
                        100.0 * peak as f64 / limit as f64
                    )?;
                    if now < peak {
                        write!(f, " at their peak, {now} open now")?;
                    }
                }
                FdConcern::Emfile(n) => {
                    write!(f, "{n} calls failed with EMFILE (per-process limit)")?
                }
                FdConcern::Enfile(n) => write!(f, "{n} calls failed with ENFILE (system limit)")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fd_warnings_are_worded_part_by_part() {
        use FdConcern::*;
        let w = |parts: Vec<FdConcern>| FdWarning(parts).to_string();
        assert_eq!(
            w(vec![NearLimit {
                peak: 205,
                limit: 256,
                now: 205
            }]),
            "open descriptors reached 205 of the limit 256 (80%)"
        );
        assert_eq!(
            w(vec![
                NearLimit {
                    peak: 62,
                    limit: 64,
                    now: 15
                },
                Emfile(2),
                Enfile(1)
            ]),
            "open descriptors reached 62 of the limit 64 (97%) at their peak, 15 open now; \
             2 calls failed with EMFILE (per-process limit); 1 calls failed with ENFILE (system limit)"
        );
    }
}
