//! The report file (`-o FILE`). tracer runs as root, often in /tmp: the file is opened so
//! that another user cannot redirect its writes (a symlink, FIFO or file planted in a
//! world-writable sticky directory is refused, as the kernel's `fs.protected_*` settings
//! would, whatever they are set to), opening it never blocks (a FIFO without a reader is an
//! error), and an existing file keeps its content until the run writes its first report.
use std::{
    fs::{File, OpenOptions},
    io::{self, Write},
    os::unix::fs::{MetadataExt, OpenOptionsExt},
    path::{Path, PathBuf},
};

use anyhow::{Result, bail};

/// A report file, truncated at the first write.
pub struct ReportFile {
    file: File,
    path: PathBuf,
    /// tracer made it (it did not exist): removed again if nothing is ever written.
    created: bool,
    written: bool,
}

/// Opens `path` for the report, without truncating it yet.
pub fn open(path: &Path) -> Result<ReportFile> {
    let shown = crate::render::term::printable(&path.to_string_lossy()).into_owned();
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let dir_meta =
        std::fs::metadata(dir).map_err(|e| anyhow::anyhow!("cannot write {shown}: {e}"))?;
    // Sticky and writable by others: /tmp, /var/tmp, /dev/shm.
    let shared = dir_meta.mode() & 0o1000 != 0 && dir_meta.mode() & 0o022 != 0;
    // SAFETY: geteuid cannot fail.
    let me = unsafe { libc::geteuid() };
    let existing = match std::fs::symlink_metadata(path) {
        Ok(m) => Some(m),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => bail!("cannot write {shown}: {e}"),
    };
    if let Some(m) = &existing
        && shared
        && m.uid() != me
        && m.uid() != dir_meta.uid()
    {
        bail!(
            "refusing to write {shown}: it belongs to another user (uid {}) in a shared sticky directory; remove it or choose another path",
            m.uid()
        );
    }
    let mut options = OpenOptions::new();
    // O_NONBLOCK: opening a FIFO that has no reader fails at once instead of waiting.
    options
        .write(true)
        .mode(0o644)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY);
    if existing.is_none() {
        // Made here and now: a symlink planted since the check above is not followed.
        options.create_new(true);
    }
    let file = options.open(path).map_err(|e| match e.raw_os_error() {
        Some(libc::ENXIO) => anyhow::anyhow!("cannot write {shown}: a FIFO with no reader"),
        Some(libc::EEXIST) => anyhow::anyhow!("cannot write {shown}: it appeared while opening it"),
        _ => anyhow::anyhow!("cannot write {shown}: {e}"),
    })?;
    // Writes block normally again (a FIFO's reader may be slow).
    // SAFETY: F_GETFL/F_SETFL on a descriptor this function owns.
    unsafe {
        let fd = std::os::fd::AsRawFd::as_raw_fd(&file);
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags >= 0 {
            libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK);
        }
    }
    Ok(ReportFile {
        file,
        path: path.to_path_buf(),
        created: existing.is_none(),
        written: false,
    })
}

impl Write for ReportFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if !self.written {
            // The run has begun: its report replaces what the file held.
            if self.file.metadata()?.is_file() {
                self.file.set_len(0)?;
            }
            self.written = true;
        }
        self.file.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl Drop for ReportFile {
    fn drop(&mut self) {
        if self.created && !self.written {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}
