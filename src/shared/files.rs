//! Durable, private file writes and lock files, the way every state file and auth.json edit
//! needs them: a reader sees the old or the new content, never a mix, and nothing the warden
//! creates is readable by others.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Creates a private directory (mode 0700) and its parents if they are missing.
pub fn ensure_dir(dir: &Path) -> io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// Replaces `path` with `bytes` (mode 0600, owned by `owner` (uid, gid) when given) so that a
/// reader sees the old or the new content, never a mix: a temporary file in the same directory,
/// fsynced, renamed over `path`, then the directory fsynced.
pub fn write_atomically(path: &Path, bytes: &[u8], owner: Option<(u32, u32)>) -> io::Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| io::Error::other("no parent directory"))?;
    let mut temp = tempfile::Builder::new()
        .prefix(".tmp-")
        .permissions(fs::Permissions::from_mode(0o600))
        .tempfile_in(dir)?;
    temp.write_all(bytes)?;
    if let Some((uid, gid)) = owner {
        use std::os::unix::fs::MetadataExt;
        let created = temp.as_file().metadata()?;
        if (created.uid(), created.gid()) != (uid, gid) {
            std::os::unix::fs::fchown(temp.as_file(), Some(uid), Some(gid))?;
        }
    }
    temp.as_file().sync_all()?;
    temp.persist(path).map_err(|error| error.error)?;
    File::open(dir)?.sync_all()
}

/// Opens (creating it with mode 0600 if needed) a file that is only ever `flock`ed, never
/// written or deleted: its inode must stay the same for every process that locks it.
pub fn open_lock_file(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
}

/// Moves a file (or whatever is in its place) that could not be read out of the way, to
/// `<name>.corrupt-<unix time>` beside it (its mode kept), and returns the new path.
pub fn move_aside(path: &Path) -> io::Result<std::path::PathBuf> {
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs());
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::other("no file name"))?
        .to_string_lossy();
    let mut aside = path.with_file_name(format!("{name}.corrupt-{seconds}"));
    for n in 1.. {
        if fs::symlink_metadata(&aside).is_err() {
            break;
        }
        aside = path.with_file_name(format!("{name}.corrupt-{seconds}.{n}"));
    }
    fs::rename(path, &aside)?;
    Ok(aside)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_writes_are_private_and_leave_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        write_atomically(&path, b"one", None).unwrap();
        write_atomically(&path, b"two", None).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let leftovers: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(leftovers.len(), 1, "no temporary file left: {leftovers:?}");
    }
}
