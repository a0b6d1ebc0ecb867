//! Version numbers that mean the same thing after a restart.
//!
//! A version number is what an operator reads in the status, the journal
//! and the dashboard ("v19 started trapping"). If the same build came back
//! as v9 after a restart, every record written before it would point at
//! the wrong thing. So a number is given to a *build and its settings*
//! (the digest of both), once, and the same build with the same settings
//! gets the same number again: after a restart, and after a revert to it.
//! A new build or new settings get the next number; a file that fails to
//! load gets none.
//!
//! The ledger is a small JSON file beside the host's other state, written
//! whole through a rename (so a crash leaves the old or the new one) and
//! read with a bound. It keeps the newest [`KEEP_PER_POLICY`] numbers per
//! policy; an older build that comes back after that gets a new number.
//! Without a file (a library caller, `policy test`) the ledger lives in
//! memory only.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// How many builds per policy keep their numbers.
pub const KEEP_PER_POLICY: usize = 64;
/// The ledger file is refused above this size.
const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024;

#[derive(Default)]
pub struct Ledger {
    file: Option<PathBuf>,
    /// policy id → (key of a build and its settings → number).
    numbers: BTreeMap<String, BTreeMap<String, u64>>,
    next: u64,
}

/// What identifies a version: the file's digest and its settings.
pub fn key(digest: &str, settings: &str) -> String {
    let mut h = Sha256::new();
    h.update(digest.as_bytes());
    h.update([0]);
    h.update(settings.as_bytes());
    hex::encode(&h.finalize()[..16])
}

impl Ledger {
    /// An in-memory ledger, numbering from 1.
    pub fn in_memory() -> Self {
        Self { file: None, numbers: BTreeMap::new(), next: 1 }
    }

    /// The ledger kept in `path`. A missing file starts an empty ledger; an
    /// unreadable one is reported and set aside (renamed `*.bad`), since
    /// numbering must not stop the host from serving.
    pub fn open(path: &Path) -> Self {
        let mut ledger = Self { file: Some(path.to_owned()), ..Self::in_memory() };
        match read(path) {
            Ok(Some(numbers)) => ledger.numbers = numbers,
            Ok(None) => {}
            Err(e) => {
                let aside = path.with_extension("bad");
                tracing::warn!(file = %path.display(), "policy version ledger unreadable ({e}); set aside as {}, numbering starts afresh", aside.display());
                let _ = std::fs::rename(path, &aside);
            }
        }
        ledger.next = ledger.numbers.values().flat_map(|m| m.values()).max().map_or(1, |m| m + 1);
        ledger
    }

    /// The number the next new version would get.
    pub fn peek(&self, id: &str, key: &str) -> u64 {
        self.numbers.get(id).and_then(|m| m.get(key)).copied().unwrap_or(self.next)
    }

    /// Record that `number` (from [`Ledger::peek`]) now serves for `id`.
    pub fn commit(&mut self, id: &str, key: &str, number: u64) {
        let numbers = self.numbers.entry(id.to_owned()).or_default();
        if numbers.get(key) == Some(&number) {
            return;
        }
        numbers.insert(key.to_owned(), number);
        self.next = self.next.max(number + 1);
        while numbers.len() > KEEP_PER_POLICY {
            let oldest = numbers.iter().min_by_key(|(_, n)| **n).map(|(k, _)| k.clone()).expect("not empty");
            numbers.remove(&oldest);
        }
        if let Some(file) = &self.file
            && let Err(e) = write(file, &self.numbers)
        {
            tracing::warn!(file = %file.display(), "cannot save the policy version ledger: {e}; numbers may change at the next restart");
        }
    }
}

type Numbers = BTreeMap<String, BTreeMap<String, u64>>;

fn read(path: &Path) -> std::io::Result<Option<Numbers>> {
    let text = match scalewise_providers::file::read_text(path, MAX_FILE_BYTES) {
        Ok(text) => text,
        Err(e) if e.is_not_found() => return Ok(None),
        Err(e) => return Err(std::io::Error::other(e)),
    };
    serde_json::from_str(&text).map(Some).map_err(std::io::Error::other)
}

fn write(path: &Path, numbers: &Numbers) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, serde_json::to_vec(numbers)?)?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_build_keeps_its_number_across_a_restart_and_a_revert() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("versions.json");
        let (a, b) = (key("aaaa", "{}"), key("bbbb", "{}"));
        let mut ledger = Ledger::open(&path);
        let va = ledger.peek("p", &a);
        ledger.commit("p", &a, va);
        let vb = ledger.peek("p", &b);
        ledger.commit("p", &b, vb);
        assert_eq!((va, vb), (1, 2));
        assert_eq!(ledger.peek("p", &a), va, "a revert gets the old number");
        let other = ledger.peek("q", &a);
        assert_eq!(other, 3, "numbers are unique across policies");

        let ledger = Ledger::open(&path);
        assert_eq!((ledger.peek("p", &a), ledger.peek("p", &b)), (1, 2), "a restart keeps the numbers");
        assert_eq!(ledger.peek("p", &key("aaaa", "{\"x\":1}")), 3, "new settings, new number");
    }

    #[test]
    fn a_peek_that_is_never_committed_uses_no_number() {
        let mut ledger = Ledger::in_memory();
        let (a, b) = (key("a", "{}"), key("b", "{}"));
        assert_eq!(ledger.peek("p", &a), 1);
        // `a` failed to load: `b` gets the same next number.
        assert_eq!(ledger.peek("p", &b), 1);
        ledger.commit("p", &b, 1);
        assert_eq!(ledger.peek("p", &a), 2);
    }

    #[test]
    fn a_corrupt_ledger_is_set_aside_and_numbering_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("versions.json");
        std::fs::write(&path, "{not json").unwrap();
        let ledger = Ledger::open(&path);
        assert_eq!(ledger.peek("p", "k"), 1);
        assert!(dir.path().join("versions.bad").exists());
    }

    #[test]
    fn each_policy_keeps_a_bounded_number_of_builds() {
        let mut ledger = Ledger::in_memory();
        for i in 0..(KEEP_PER_POLICY + 10) {
            let k = key(&i.to_string(), "{}");
            let n = ledger.peek("p", &k);
            ledger.commit("p", &k, n);
        }
        assert_eq!(ledger.numbers["p"].len(), KEEP_PER_POLICY);
        assert_eq!(ledger.peek("p", &key("0", "{}")), KEEP_PER_POLICY as u64 + 11, "the oldest was forgotten");
    }
}
