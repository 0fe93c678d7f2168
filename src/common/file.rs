//! Config files written so a crash never leaves a torn one: the new content
//! goes to `<file>.tmp`, is synced, the current file becomes `<file>.bak`,
//! and the temp file is renamed into place (RocketMQ's ConfigManager keeps
//! the same `.bak`).

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_os_string();
    s.push(suffix);
    PathBuf::from(s)
}

/// Replaces `path` with `content` atomically, keeping the old one as `.bak`.
pub fn write_atomically(path: &Path, content: &[u8]) -> io::Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    let tmp = with_suffix(path, ".tmp");
    {
        let mut f = File::create(&tmp)?;
        f.write_all(content)?;
        f.sync_all()?;
    }
    if path.exists() {
        fs::copy(path, with_suffix(path, ".bak"))?;
    }
    fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent()
        && let Ok(d) = File::open(dir)
    {
        let _ = d.sync_all();
    }
    Ok(())
}

/// The file's content, or its `.bak` when the file is missing or empty;
/// `None` when neither exists.
pub fn read_with_backup(path: &Path) -> io::Result<Option<Vec<u8>>> {
    for p in [path.to_path_buf(), with_suffix(path, ".bak")] {
        match fs::read(&p) {
            Ok(b) if !b.is_empty() => return Ok(Some(b)),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_and_keeps_a_backup() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/config.json");
        assert_eq!(read_with_backup(&p).unwrap(), None);
        write_atomically(&p, b"one").unwrap();
        write_atomically(&p, b"two").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert_eq!(fs::read(dir.path().join("sub/config.json.bak")).unwrap(), b"one");
        fs::remove_file(&p).unwrap();
        assert_eq!(read_with_backup(&p).unwrap(), Some(b"one".to_vec()));
    }
}
