//! Reading a policy file, which is untrusted input.
//!
//! Anyone who can write to the policy directory can put anything there: a
//! symbolic link to `/dev/zero`, a FIFO, a sparse 2 GB file named
//! `x.wasm`, a file still being copied. None of these may cost the host its
//! memory, its start, or the policies already serving. So a file is read
//! only when:
//!
//! - it is a regular file (a link is followed, so Kubernetes ConfigMap
//!   mounts work, but what it points at must be a regular file too);
//! - its size, taken from the *opened* handle before any byte is read, is
//!   within the configured cap, and the read itself stops at the cap, in
//!   case the file grows in between;
//! - its first bytes are what its extension says (a component's header, or
//!   text for a script), so a wrong file is refused without reading it all;
//! - it has *settled*: its size and modification time have not changed for
//!   [`FileLimits::settle`], so a file still being written is not loaded
//!   half-written (and refused, and retried, for as long as the copy runs).
//!
//! The first two are [`scalewise_providers::file::open`], shared with
//! every other file the host reads; its open is non-blocking, so a FIFO
//! cannot hold the scan up either.

use std::io::Read;
use std::path::Path;
use std::time::{Duration, SystemTime};

use scalewise_providers::file::FileError;

use super::error::LoadError;

/// Limits on the files the registry reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileLimits {
    /// The largest policy file read, in bytes. Components built by
    /// componentize-py carry a Python interpreter (~40 MB), so the default
    /// leaves room for them.
    pub max_bytes: u64,
    /// How long a file's size and modification time must stay the same
    /// before it is loaded.
    pub settle: Duration,
}

/// The default cap on a policy file: 64 MiB.
pub const DEFAULT_MAX_BYTES: u64 = 64 * 1024 * 1024;
/// The default settle time of the host's policy directory.
pub const DEFAULT_SETTLE: Duration = Duration::from_millis(500);

impl Default for FileLimits {
    /// The host's defaults. (A bare [`super::Registry`] loads at once, with
    /// no settle time, as a library caller that wrote the file expects.)
    fn default() -> Self {
        Self { max_bytes: DEFAULT_MAX_BYTES, settle: DEFAULT_SETTLE }
    }
}

/// The first bytes of a WebAssembly component: the magic, then the
/// component encoding's version and layer.
const COMPONENT_HEADER: [u8; 8] = [0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00];
/// The first bytes of a core module (version 1, layer 0).
const MODULE_HEADER: [u8; 8] = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];

/// Has a file with this modification time settled by `now`?
pub fn settled(modified: Option<SystemTime>, now: SystemTime, settle: Duration) -> bool {
    settle.is_zero() || modified.and_then(|m| now.duration_since(m).ok()).is_some_and(|age| age >= settle)
}

/// Read a policy file within `limits`, or say why not.
pub fn read(path: &Path, limits: &FileLimits) -> Result<Vec<u8>, LoadError> {
    let shown = || path.display().to_string();
    let io = |source| LoadError::Io { path: shown(), source };
    let (file, meta) = scalewise_providers::file::open(path).map_err(|e| match e {
        FileError::NotRegular(kind) => LoadError::NotRegularFile { path: shown(), kind },
        FileError::Io(e) => io(e),
        other => io(std::io::Error::other(other)),
    })?;
    if meta.len() > limits.max_bytes {
        return Err(LoadError::TooLarge { path: shown(), size: meta.len(), max: limits.max_bytes });
    }
    let mut head = Vec::with_capacity(8);
    let mut reader = file.take(limits.max_bytes + 1);
    (&mut reader).take(8).read_to_end(&mut head).map_err(io)?;
    check_header(path, &head)?;
    let mut bytes = head;
    bytes.reserve(meta.len().saturating_sub(8) as usize);
    reader.read_to_end(&mut bytes).map_err(io)?;
    if bytes.len() as u64 > limits.max_bytes {
        return Err(LoadError::TooLarge { path: shown(), size: bytes.len() as u64, max: limits.max_bytes });
    }
    Ok(bytes)
}

/// Refuse a file whose first bytes do not match its extension.
fn check_header(path: &Path, head: &[u8]) -> Result<(), LoadError> {
    match path.extension().and_then(|e| e.to_str()) {
        Some("wasm") if head == COMPONENT_HEADER => Ok(()),
        Some("wasm") if head == MODULE_HEADER => Err(LoadError::CoreModule),
        Some("wasm") => Err(LoadError::NotWasm),
        // A script is text: a NUL in its first bytes means it is not.
        Some("rhai") if head.contains(&0) => Err(LoadError::RhaiSyntax("the file is binary, not a script".into())),
        Some("rhai") => Ok(()),
        _ => Err(LoadError::UnsupportedFile(path.display().to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: FileLimits = FileLimits { max_bytes: 1024, settle: Duration::ZERO };

    fn component(len: usize) -> Vec<u8> {
        let mut b = COMPONENT_HEADER.to_vec();
        b.resize(len, 0);
        b
    }

    #[test]
    fn a_link_to_a_device_is_refused_without_reading() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("zero.wasm");
        std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
        let err = read(&link, &LIMITS).unwrap_err();
        assert!(matches!(err, LoadError::NotRegularFile { kind: "a character device", .. }), "{err}");
        assert!(err.to_string().contains("zero.wasm"), "{err}");
    }

    #[test]
    fn a_fifo_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe.rhai");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        assert!(matches!(read(&fifo, &LIMITS), Err(LoadError::NotRegularFile { kind: "a FIFO", .. })));
    }

    #[test]
    fn a_link_to_a_regular_file_is_followed() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("real"), component(100)).unwrap();
        let link = dir.path().join("p.wasm");
        std::os::unix::fs::symlink(dir.path().join("real"), &link).unwrap();
        assert_eq!(read(&link, &LIMITS).unwrap().len(), 100);
    }

    #[test]
    fn an_oversized_file_is_refused_by_its_size_before_reading() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.wasm");
        // Sparse: 2 GB on paper, nothing on disk.
        std::fs::File::create(&path).unwrap().set_len(2 << 30).unwrap();
        let err = read(&path, &LIMITS).unwrap_err();
        assert!(matches!(err, LoadError::TooLarge { size, max: 1024, .. } if size == 2 << 30), "{err}");
        assert!(err.to_string().contains("policies.max_file_bytes"), "{err}");
        std::fs::write(&path, component(1024)).unwrap();
        assert_eq!(read(&path, &LIMITS).unwrap().len(), 1024, "exactly the cap is allowed");
    }

    #[test]
    fn the_header_is_checked_on_the_first_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.wasm");
        std::fs::write(&path, b"#!/bin/sh\necho hi\n").unwrap();
        assert!(matches!(read(&path, &LIMITS), Err(LoadError::NotWasm)));
        let mut module = MODULE_HEADER.to_vec();
        module.extend([0; 8]);
        std::fs::write(&path, module).unwrap();
        assert!(matches!(read(&path, &LIMITS), Err(LoadError::CoreModule)));
        let script = dir.path().join("s.rhai");
        std::fs::write(&script, [0x7f, b'E', b'L', b'F', 0, 0]).unwrap();
        assert!(matches!(read(&script, &LIMITS), Err(LoadError::RhaiSyntax(_))));
        std::fs::write(&script, "fn strategy(input) { #{} }").unwrap();
        assert!(read(&script, &LIMITS).is_ok());
    }

    #[test]
    fn a_file_settles_once_unchanged_for_the_settle_time() {
        let now = SystemTime::now();
        let settle = Duration::from_millis(500);
        assert!(!settled(Some(now - Duration::from_millis(100)), now, settle));
        assert!(settled(Some(now - Duration::from_millis(600)), now, settle));
        assert!(!settled(Some(now + Duration::from_secs(60)), now, settle), "a time in the future has not settled");
        assert!(settled(Some(now), now, Duration::ZERO));
    }
}
