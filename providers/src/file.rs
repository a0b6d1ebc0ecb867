//! Reading a file the host does not control, with a bound.
//!
//! A config, a secret, a CA bundle, a prompt template, a federated token:
//! each is a path an operator (or a mount, or a typo) points somewhere. If
//! it points at `/dev/zero` the read must stop; if it points at a FIFO the
//! open must not wait for a writer that never comes, which would hold a
//! start or a reload forever. So every such read goes through here:
//!
//! - what the path names (links followed, so Kubernetes secret and
//!   ConfigMap mounts work) must be a regular file, checked before opening;
//! - the open is non-blocking, and the *opened* handle is checked again, in
//!   case the path was swapped in between;
//! - the size is checked on the handle before a byte is read, and the read
//!   itself stops one byte past the cap, in case the file grows meanwhile.
//!
//! The policy directory's reader (`scalewise::policy::file`) adds its own
//! header and settle checks on top of [`open`].

use std::fmt;
use std::fs::{File, Metadata};
use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

/// Why a bounded read refused or failed. It does not name the path: the
/// caller says what the file was for.
#[derive(Debug)]
pub enum FileError {
    Io(std::io::Error),
    /// What the path names, in words: "a FIFO", "a directory"...
    NotRegular(&'static str),
    TooLarge { size: u64, max: u64 },
    NotText,
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FileError::Io(e) => write!(f, "{e}"),
            FileError::NotRegular(kind) => write!(f, "{kind}, not a regular file"),
            FileError::TooLarge { size, max } => write!(f, "{size} bytes, over the cap of {max}"),
            FileError::NotText => write!(f, "not UTF-8 text"),
        }
    }
}

impl std::error::Error for FileError {}

impl From<std::io::Error> for FileError {
    fn from(e: std::io::Error) -> Self {
        FileError::Io(e)
    }
}

impl FileError {
    /// `path: what went wrong`, and after a refusal by size, `; hint`: what
    /// the file is for, so the reader knows why the cap is what it is.
    pub fn at(&self, path: &Path, hint: &str) -> String {
        match self {
            FileError::TooLarge { .. } => format!("{}: {self}; {hint}", path.display()),
            _ => format!("{}: {self}", path.display()),
        }
    }

    /// Whether the file is simply not there (a caller may treat that as
    /// "nothing saved yet").
    pub fn is_not_found(&self) -> bool {
        matches!(self, FileError::Io(e) if e.kind() == std::io::ErrorKind::NotFound)
    }
}

/// Open a regular file without blocking, and its metadata as the handle
/// sees it.
pub fn open(path: &Path) -> Result<(File, Metadata), FileError> {
    // Refuse what is not a regular file before opening it: opening a FIFO
    // or a device may block or have effects of its own.
    let meta = std::fs::metadata(path)?;
    if !meta.is_file() {
        return Err(FileError::NotRegular(kind_of(&meta)));
    }
    let file = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY).open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(FileError::NotRegular(kind_of(&meta)));
    }
    Ok((file, meta))
}

/// A whole regular file of at most `max` bytes.
pub fn read(path: &Path, max: u64) -> Result<Vec<u8>, FileError> {
    let (file, meta) = open(path)?;
    if meta.len() > max {
        return Err(FileError::TooLarge { size: meta.len(), max });
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(max + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(FileError::TooLarge { size: bytes.len() as u64, max });
    }
    Ok(bytes)
}

/// A whole regular file of at most `max` bytes of UTF-8 text.
pub fn read_text(path: &Path, max: u64) -> Result<String, FileError> {
    String::from_utf8(read(path, max)?).map_err(|_| FileError::NotText)
}

/// What a file that is not a regular one is, in words.
pub fn kind_of(meta: &Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    match () {
        _ if t.is_dir() => "a directory",
        _ if t.is_char_device() => "a character device",
        _ if t.is_block_device() => "a block device",
        _ if t.is_fifo() => "a FIFO",
        _ if t.is_socket() => "a socket",
        _ if meta.nlink() == 0 => "a deleted file",
        _ => "not a regular file",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn a_fifo_is_refused_without_waiting_for_a_writer() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("secret");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let started = Instant::now();
        let e = read(&fifo, 1024).unwrap_err();
        assert_eq!(e.to_string(), "a FIFO, not a regular file");
        // A blocking open would not have come back at all.
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn devices_and_directories_are_refused_by_kind() {
        assert_eq!(read(Path::new("/dev/zero"), 1024).unwrap_err().to_string(), "a character device, not a regular file");
        assert_eq!(read(Path::new("/"), 1024).unwrap_err().to_string(), "a directory, not a regular file");
        assert!(read(Path::new("/no/such/file"), 1024).unwrap_err().is_not_found());
    }

    #[test]
    fn a_link_to_a_regular_file_is_read_and_the_cap_is_checked_first() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("..data");
        std::fs::write(&real, "token\n").unwrap();
        let link = dir.path().join("token");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        assert_eq!(read_text(&link, 6).unwrap(), "token\n");
        assert_eq!(read(&link, 5).unwrap_err().to_string(), "6 bytes, over the cap of 5");
        assert_eq!(read(&link, 5).unwrap_err().at(&link, "a token is short"), format!("{}: 6 bytes, over the cap of 5; a token is short", link.display()));
        assert_eq!(read(Path::new("/"), 5).unwrap_err().at(Path::new("/"), "a token is short"), "/: a directory, not a regular file");
        // A sparse 2 GB file is refused by its size, not read.
        let huge = dir.path().join("huge");
        std::fs::File::create(&huge).unwrap().set_len(2 << 30).unwrap();
        assert!(matches!(read(&huge, 1 << 20), Err(FileError::TooLarge { size, .. }) if size == 2 << 30));
        std::fs::write(&real, [0xff, 0xfe]).unwrap();
        assert_eq!(read_text(&link, 6).unwrap_err().to_string(), "not UTF-8 text");
    }
}
