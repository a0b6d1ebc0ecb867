//! What this binary carries for policy authors: the contract (`sdk/wit`)
//! and the Python and JavaScript kits, at the contract version this host
//! speaks.
//!
//! Why embed them: `policy build` must build against the exact contract the
//! host checks, whatever copy (if any) the project has, and `policy new`
//! must write a project that builds and tests as it is, on a machine with
//! no checkout of this repository and no access to a package registry. The
//! kits in `sdk/python` and `sdk/js` stay the one source: these are their
//! bytes, compiled in.

use std::path::Path;

use anyhow::Context;

/// The contract's WIT files, by name.
pub const CONTRACT: [(&str, &str); 3] = [
    ("types.wit", include_str!("../../../../sdk/wit/types.wit")),
    ("worlds.wit", include_str!("../../../../sdk/wit/worlds.wit")),
    ("log.wit", include_str!("../../../../sdk/wit/log.wit")),
];

/// The Python kit's package `scalewise_policy`, by file name.
pub const PYTHON: [(&str, &str); 6] = [
    ("__init__.py", include_str!("../../../../sdk/python/scalewise_policy/__init__.py")),
    ("types.py", include_str!("../../../../sdk/python/scalewise_policy/types.py")),
    ("series.py", include_str!("../../../../sdk/python/scalewise_policy/series.py")),
    ("settings.py", include_str!("../../../../sdk/python/scalewise_policy/settings.py")),
    ("roles.py", include_str!("../../../../sdk/python/scalewise_policy/roles.py")),
    ("log.py", include_str!("../../../../sdk/python/scalewise_policy/log.py")),
];

/// The JavaScript kit `@scalewise/policy`, by file name.
pub const JS: [(&str, &str); 3] = [
    ("index.js", include_str!("../../../../sdk/js/index.js")),
    ("index.d.ts", include_str!("../../../../sdk/js/index.d.ts")),
    ("package.json", include_str!("../../../../sdk/js/package.json")),
];

/// Write `files` into `dir`, creating it.
pub fn write_all(dir: &Path, files: &[(&str, &str)]) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for (name, text) in files {
        std::fs::write(dir.join(name), text).with_context(|| format!("writing {}", dir.join(name).display()))?;
    }
    Ok(())
}

/// Write the contract's WIT files into `dir`.
pub fn write_contract(dir: &Path) -> anyhow::Result<()> {
    write_all(dir, &CONTRACT)
}
