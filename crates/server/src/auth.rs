//! Secret comparison, and the ACL file (`--aclfile`).

use std::io::Write as _;
use std::path::Path;

use staykv_engine::Engine;

/// Load `--aclfile` into the engine's ACL at start. A missing file is created empty (the
/// default user keeps its settings); a bad line refuses the start, naming the line.
/// `--requirepass` applies to the default user unless the file defines it.
pub fn load_acl_file(path: &Path, engine: &Engine, requirepass: Option<&str>) -> Result<(), String> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            tracing::warn!("ACL file {} does not exist: starting with the default user only", path.display());
            return Ok(());
        }
        Err(e) => return Err(format!("cannot read the ACL file {}: {e}", path.display())),
    };
    let name = path.display().to_string();
    let loaded = engine
        .acl
        .parse_file(&text, &engine.table, &name, requirepass.map(str::as_bytes))
        .map_err(|e| format!("the ACL file has errors: {e}"))?;
    if requirepass.is_some() && loaded.defines_default {
        tracing::warn!("--requirepass ignored: the ACL file {} defines the default user", path.display());
    }
    let count = loaded.users.len();
    engine.acl.replace_users(loaded.users);
    tracing::info!("loaded {count} ACL users from {}", path.display());
    Ok(())
}

/// Replace the ACL file atomically: write a temporary file beside it, fsync, rename, fsync
/// the directory. The file is readable by its owner only (it holds password hashes).
pub fn write_acl_file(path: &Path, text: &str) -> std::io::Result<()> {
    let dir = crate::tools::parent_dir(path);
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
        std::process::id()
    ));
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        let mut file = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(dir)?.sync_all()
}

/// Compare two secrets in time that depends only on their lengths, so a timing attacker
/// learns nothing about how much of a guess was right.
pub fn constant_time_eq(expected: &[u8], given: &[u8]) -> bool {
    let mut diff = expected.len() ^ given.len();
    for (i, &e) in expected.iter().enumerate() {
        let g = given.get(i % given.len().max(1)).copied().unwrap_or(0);
        diff |= usize::from(e ^ g);
    }
    diff == 0
}

#[cfg(test)]
mod tests {
    use super::constant_time_eq;

    #[test]
    fn compares() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secre"));
        assert!(!constant_time_eq(b"secret", b""));
        assert!(constant_time_eq(b"", b""));
    }
}
