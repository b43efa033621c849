//! Turning a [`Report`] into bytes: text for people, JSON for programs.
pub mod json;
pub mod term;
pub mod text;

use std::io::Write;

use crate::{cli::Format, model::Report};

/// Writes one report in the chosen format.
pub fn write(out: &mut dyn Write, format: Format, report: &Report) -> std::io::Result<()> {
    match format {
        Format::Text => text::write(out, report),
        Format::Json => json::write(out, report),
    }?;
    out.flush()
}
