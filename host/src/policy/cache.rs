//! Precompiled policy artifacts on disk, so a restart or a reload of a known
//! component skips Cranelift entirely.
//!
//! An artifact is keyed by the component's SHA-256 and by the engine's
//! compatibility hash (wasmtime version, target and every setting that
//! affects code generation). A key that matches is safe to load; anything
//! else is compiled afresh and written beside it. Files are written to a
//! temporary name and renamed, so a crash never leaves half an artifact.
//!
//! Loading an artifact maps native code produced by this host: the cache
//! directory must be writable only by the user the host runs as.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};

use wasmtime::Engine;
use wasmtime::component::Component;

pub struct ArtifactCache {
    dir: PathBuf,
}

impl ArtifactCache {
    pub fn new(dir: impl Into<PathBuf>) -> std::io::Result<Self> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir)?;
        Ok(Self { dir })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn key(engine: &Engine, bytes: &[u8]) -> String {
        let mut h = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut h);
        format!("{}-{:016x}.cwasm", super::digest(bytes), h.finish())
    }

    /// The compiled component, from disk when it is there.
    pub fn get_or_compile(&self, engine: &Engine, bytes: &[u8]) -> wasmtime::Result<Component> {
        let path = self.dir.join(Self::key(engine, bytes));
        if path.exists() {
            // SAFETY: the file was written by `precompile_component` of an
            // engine with the same compatibility hash (the key says so), into
            // a directory only this host's user may write.
            match unsafe { Component::deserialize_file(engine, &path) } {
                Ok(c) => return Ok(c),
                Err(e) => tracing::warn!(path = %path.display(), "ignoring unreadable cached artifact: {e:#}"),
            }
        }
        let compiled = engine.precompile_component(bytes)?;
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        if let Err(e) = std::fs::write(&tmp, &compiled).and_then(|_| std::fs::rename(&tmp, &path)) {
            tracing::warn!(dir = %self.dir.display(), "cannot write to the compile cache: {e}");
            let _ = std::fs::remove_file(&tmp);
        }
        // SAFETY: `compiled` came from `precompile_component` on this engine.
        unsafe { Component::deserialize(engine, &compiled) }
    }

    /// Whether the artifact for these bytes is already on disk.
    pub fn contains(&self, engine: &Engine, bytes: &[u8]) -> bool {
        self.dir.join(Self::key(engine, bytes)).exists()
    }
}
