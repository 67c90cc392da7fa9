//! Files of the client's state, replaced atomically.

use std::fs;
use std::io::Write;
use std::path::Path;

use anyhow::Context;

/// Reads a file; `None` if it does not exist.
pub fn read_if_exists(file: &Path) -> anyhow::Result<Option<Vec<u8>>> {
    match fs::read(file) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", file.display())),
    }
}

/// Replaces `file` with `bytes` atomically: a sibling is written and
/// synced, then renamed over it, so a reader (or a crash) sees the old
/// contents or the new, never a mix. Creates the directory if needed.
pub fn replace(file: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let tmp = file.with_extension("tmp");
    let mut f = fs::File::create(&tmp).with_context(|| format!("writing {}", tmp.display()))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .with_context(|| format!("writing {}", tmp.display()))?;
    fs::rename(&tmp, file).with_context(|| format!("writing {}", file.display()))
}
