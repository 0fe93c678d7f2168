//! Config files written so a crash never leaves a torn one: the new content
//! goes to `<file>.tmp`, is synced, the current file becomes `<file>.bak`,
//! the temp file is renamed into place and the directory is synced
//! (RocketMQ's ConfigManager keeps the same `.bak`). Reading falls back to
//! the `.bak` when the file is missing, empty or unreadable, as Apache's
//! `ConfigManager.load` does.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_os_string();
    s.push(suffix);
    PathBuf::from(s)
}

/// Makes the creation, removal or renaming of entries in `dir` durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Syncs the directory holding `path` (see [`sync_dir`]).
pub fn sync_parent(path: &Path) -> io::Result<()> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => sync_dir(dir),
        _ => sync_dir(Path::new(".")),
    }
}

/// Creates `dir` and any missing parents, syncing each parent that got a
/// new entry, so the directory survives a power cut.
pub fn create_dir_durably(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        create_dir_durably(parent)?;
    }
    match fs::create_dir(dir) {
        Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(e),
        _ => {}
    }
    sync_parent(dir)
}

/// Creates the empty file `path` (a marker such as the store's `abort`)
/// so that it survives a power cut.
pub fn create_marker(path: &Path) -> io::Result<()> {
    File::create(path)?.sync_all()?;
    sync_parent(path)
}

/// Removes the marker `path` so that it stays removed after a power cut.
pub fn remove_marker(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => sync_parent(path),
    }
}

/// Replaces `path` with `content` atomically, keeping the old one as `.bak`.
pub fn write_atomically(path: &Path, content: &[u8]) -> io::Result<()> {
    if let Some(dir) = path.parent() {
        create_dir_durably(dir)?;
    }
    let tmp = with_suffix(path, ".tmp");
    {
        let mut f = File::create(&tmp)?;
        f.write_all(content)?;
        f.sync_all()?;
    }
    if path.exists() {
        let bak = with_suffix(path, ".bak");
        fs::copy(path, &bak)?;
        File::open(&bak)?.sync_all()?;
    }
    fail::fail_point!("config::before_rename");
    fs::rename(&tmp, path)?;
    sync_parent(path)
}

/// The file's content parsed by `parse`; the `.bak` when the file is
/// missing, empty or does not parse. `None` when neither exists. A file
/// that does not parse, with no usable `.bak`, is an `InvalidData` error
/// naming the file and saying why.
pub fn read_parsed_with_backup<T, E: std::fmt::Display>(
    path: &Path,
    parse: impl Fn(&[u8]) -> Result<T, E>,
) -> io::Result<Option<T>> {
    let read = |p: &Path| match fs::read(p) {
        Ok(b) if !b.is_empty() => Ok(Some(b)),
        Ok(_) => Ok(None),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io::Error::new(e.kind(), format!("cannot read {}: {e}", p.display()))),
    };
    let mut malformed = None;
    if let Some(bytes) = read(path)? {
        match parse(&bytes) {
            Ok(v) => return Ok(Some(v)),
            Err(e) => malformed = Some(format!("malformed config file {}: {e}", path.display())),
        }
    }
    let bak = with_suffix(path, ".bak");
    if let Some(bytes) = read(&bak)? {
        match parse(&bytes) {
            Ok(v) => {
                if let Some(why) = &malformed {
                    log::warn!("{why}; using {} instead", bak.display());
                }
                return Ok(Some(v));
            }
            Err(e) if malformed.is_none() => {
                malformed = Some(format!("malformed config file {}: {e}", bak.display()));
            }
            Err(_) => {}
        }
    }
    match malformed {
        Some(why) => Err(io::Error::new(io::ErrorKind::InvalidData, why)),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(b: &[u8]) -> Result<String, String> {
        let s = String::from_utf8(b.to_vec()).map_err(|e| e.to_string())?;
        if s.starts_with('{') { Ok(s) } else { Err(format!("not an object: {s}")) }
    }

    #[test]
    fn replaces_and_keeps_a_backup() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/config.json");
        assert_eq!(read_parsed_with_backup(&p, text).unwrap(), None);
        write_atomically(&p, b"{one}").unwrap();
        write_atomically(&p, b"{two}").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"{two}");
        assert_eq!(fs::read(dir.path().join("sub/config.json.bak")).unwrap(), b"{one}");
        fs::remove_file(&p).unwrap();
        assert_eq!(read_parsed_with_backup(&p, text).unwrap().as_deref(), Some("{one}"));
    }

    #[test]
    fn a_damaged_file_falls_back_to_its_backup_or_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("config.json");
        write_atomically(&p, b"{old}").unwrap();
        write_atomically(&p, b"{new}").unwrap();
        fs::write(&p, b"\0\0garbage").unwrap();
        assert_eq!(read_parsed_with_backup(&p, text).unwrap().as_deref(), Some("{old}"));
        fs::write(dir.path().join("config.json.bak"), b"also garbage").unwrap();
        let e = read_parsed_with_backup(&p, text).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert!(e.to_string().contains("config.json:"), "{e}");
    }
}
