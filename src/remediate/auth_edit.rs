//! Changing `auth.json` the way Hermes itself does, so that no Hermes process ever reads a torn,
//! foreign or unparsable file: under Hermes's own lock, from a fresh read, atomically.
//!
//! The lock is an exclusive `flock` on `<home>/auth.lock` (never on `auth.json`, whose inode
//! every write replaces; the lock file is never deleted), tried every 50 ms up to a deadline
//! below Hermes's own 15 s, and held only for the read-change-write. Without it nothing is
//! written. Under it the file is read again and parsed strictly; a file that does not parse or
//! has an unexpected shape is never written. The change is written as Hermes writes the store
//! (`json.dumps(store, indent=2) + "\n"`) to a mode-0600 temporary file in the directory of the
//! real file (a symlinked `auth.json` stays a symlink), fsynced, renamed over it, with the
//! directory fsynced and the owner kept.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::hermes::semantics::Bom;
use crate::observe::events::WriteResult;
use crate::pool::snapshot::{self, AuthError, AuthSnapshot};
use crate::remediate::pyjson;
use crate::shared::files;

/// The UTF-8 byte-order mark.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Hermes's own retry interval.
const LOCK_RETRY: Duration = Duration::from_millis(50);

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("{path}: Hermes's lock was held for longer than {deadline:?}; nothing written")]
    LockTimeout { path: PathBuf, deadline: Duration },
    #[error("{0}; nothing written")]
    Unreadable(#[from] AuthError),
    #[error(
        "{path}: starts with a UTF-8 byte-order mark, which the installed Hermes cannot read (it \
         sees an empty store); nothing written: remove the mark (the first 3 bytes)"
    )]
    Bom { path: PathBuf },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl WriteError {
    /// The outcome's name, as the `auth_writes_total{result}` metric and the audit log call it.
    pub fn result(&self) -> WriteResult {
        match self {
            WriteError::LockTimeout { .. } => WriteResult::LockTimeout,
            WriteError::Unreadable(AuthError::Io { .. }) | WriteError::Io { .. } => {
                WriteResult::IoError
            }
            WriteError::Unreadable(_) | WriteError::Bom { .. } => WriteResult::ParseError,
        }
    }
}

/// What a transaction did.
#[derive(Debug)]
pub struct Edited<T> {
    pub value: T,
    /// Whether auth.json was rewritten (nothing is written when the change changed nothing).
    pub written: bool,
    pub lock_wait: Duration,
}

/// Runs `change` on the current `auth.json` of the home holding `auth_json`, under Hermes's lock,
/// and writes the result if it differs. `change` sees the parsed snapshot and the document. A
/// file with a UTF-8 byte-order mark keeps it, or is not written at all, as `bom` says.
pub fn edit<T>(
    auth_json: &Path,
    deadline: Duration,
    bom: Bom,
    change: impl FnOnce(&AuthSnapshot, &mut Value) -> T,
) -> Result<Edited<T>, WriteError> {
    let io_error = |path: &Path| {
        let path = path.to_owned();
        move |source| WriteError::Io { path, source }
    };
    let lock_path = auth_json.with_file_name("auth.lock");
    let lock = files::open_append(&lock_path).map_err(io_error(&lock_path))?;
    let started = Instant::now();
    loop {
        match lock.try_lock() {
            Ok(()) => break,
            Err(fs::TryLockError::WouldBlock) if started.elapsed() < deadline => {
                std::thread::sleep(LOCK_RETRY)
            }
            Err(fs::TryLockError::WouldBlock) => {
                return Err(WriteError::LockTimeout {
                    path: lock_path,
                    deadline,
                });
            }
            Err(fs::TryLockError::Error(source)) => {
                return Err(WriteError::Io {
                    path: lock_path,
                    source,
                });
            }
        }
    }
    let lock_wait = started.elapsed();
    // The lock is released when `lock` is closed, on every path out of here.
    let path = match fs::canonicalize(auth_json) {
        Ok(real) => real,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => auth_json.to_owned(),
        Err(source) => return Err(io_error(auth_json)(source)),
    };
    // Bounded and never blocking: a FIFO, a device or a directory in its place, or a file over
    // the limit, is an error naming auth.json, and nothing is written.
    let (bytes, owner) = match files::read_regular(&path, files::AUTH_JSON_LIMIT) {
        Ok(Some((bytes, metadata))) => (bytes, Some((metadata.uid(), metadata.gid()))),
        Ok(None) => (Vec::new(), None),
        Err(source) => return Err(io_error(auth_json)(files::without_path(source))),
    };
    let (snapshot, mut document) = match owner {
        // No auth.json yet: nothing to mark, and nothing is written.
        None => (AuthSnapshot::default(), Value::Null),
        Some(_) => {
            let document = snapshot::parse_document(auth_json, &bytes)?;
            (snapshot::snapshot(auth_json, &document)?, document)
        }
    };
    let before = document.clone();
    let value = change(&snapshot, &mut document);
    let written = document != before;
    if written {
        let marked = bytes.starts_with(BOM);
        if marked && bom == Bom::Refuse {
            return Err(WriteError::Bom {
                path: auth_json.to_owned(),
            });
        }
        let text = pyjson::dumps(&document);
        let bytes = match marked {
            true => [BOM, text.as_bytes()].concat(),
            false => text.into_bytes(),
        };
        files::write_atomically(&path, &bytes, owner).map_err(io_error(&path))?;
    }
    drop(lock);
    Ok(Edited {
        value,
        written,
        lock_wait,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    const AUTH: &str = "{\n  \"version\": 1,\n  \"credential_pool\": {\n    \"x\": [\n      {\n        \"id\": \"a1\",\n        \"last_status\": null\n      }\n    ]\n  }\n}\n";

    fn set_status(document: &mut Value, status: &str) {
        document["credential_pool"]["x"][0]["last_status"] = Value::from(status);
    }

    #[test]
    fn writes_a_change_through_a_symlink_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real.json");
        fs::write(&real, AUTH).unwrap();
        fs::set_permissions(&real, fs::Permissions::from_mode(0o644)).unwrap();
        let link = dir.path().join("auth.json");
        std::os::unix::fs::symlink("real.json", &link).unwrap();
        let edited = edit(
            &link,
            Duration::from_secs(1),
            Bom::Refuse,
            |snapshot, document| {
                assert_eq!(snapshot.pools[0].entries[0].id, "a1");
                set_status(document, "dead");
            },
        )
        .unwrap();
        assert!(edited.written);
        assert!(fs::symlink_metadata(&link).unwrap().is_symlink());
        assert_eq!(
            fs::read_to_string(&real).unwrap(),
            AUTH.replace("\"last_status\": null", "\"last_status\": \"dead\"")
        );
        assert_eq!(
            fs::metadata(&real).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(dir.path().join("auth.lock").exists());
    }

    #[test]
    fn the_pid_newer_hermes_writes_into_auth_lock_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let auth = dir.path().join("auth.json");
        fs::write(&auth, AUTH).unwrap();
        // Hermes >= 0.20 writes its PID into the lock file while holding it (here: a PID left
        // behind); the warden only ever flocks the file.
        let lock = dir.path().join("auth.lock");
        fs::write(&lock, "4242\n").unwrap();
        let inode = std::os::unix::fs::MetadataExt::ino(&fs::metadata(&lock).unwrap());
        let edited = edit(&auth, Duration::from_secs(1), Bom::Refuse, |_, document| {
            set_status(document, "dead")
        })
        .unwrap();
        assert!(edited.written);
        assert_eq!(fs::read_to_string(&lock).unwrap(), "4242\n");
        assert_eq!(
            std::os::unix::fs::MetadataExt::ino(&fs::metadata(&lock).unwrap()),
            inode
        );
    }

    #[test]
    fn keeps_the_owner() {
        let dir = tempfile::tempdir().unwrap();
        let auth = dir.path().join("auth.json");
        fs::write(&auth, AUTH).unwrap();
        let mine = fs::metadata(&auth).unwrap();
        // As root (CI), give the file to someone else; otherwise it can only be ours.
        let owner = if mine.uid() == 0 {
            std::os::unix::fs::chown(&auth, Some(4242), Some(4242)).unwrap();
            (4242, 4242)
        } else {
            (mine.uid(), mine.gid())
        };
        let edited = edit(&auth, Duration::from_secs(1), Bom::Refuse, |_, document| {
            set_status(document, "dead")
        })
        .unwrap();
        assert!(edited.written);
        let after = fs::metadata(&auth).unwrap();
        assert_eq!((after.uid(), after.gid()), owner);
    }

    #[test]
    fn no_change_means_no_write() {
        let dir = tempfile::tempdir().unwrap();
        let auth = dir.path().join("auth.json");
        fs::write(&auth, AUTH).unwrap();
        let inode = fs::metadata(&auth).unwrap().ino();
        let edited = edit(&auth, Duration::from_secs(1), Bom::Refuse, |_, _| ()).unwrap();
        assert!(!edited.written);
        assert_eq!(fs::metadata(&auth).unwrap().ino(), inode);
    }

    #[test]
    fn an_unparsable_file_is_never_written() {
        let dir = tempfile::tempdir().unwrap();
        let auth = dir.path().join("auth.json");
        let broken = AUTH.replace("\"a1\"", "a1");
        fs::write(&auth, &broken).unwrap();
        let error = edit(&auth, Duration::from_secs(1), Bom::Refuse, |_, document| {
            set_status(document, "dead")
        })
        .unwrap_err();
        assert_eq!(error.result(), WriteResult::ParseError);
        assert!(error.to_string().contains("auth.json:6:"), "{error}");
        assert_eq!(fs::read_to_string(&auth).unwrap(), broken);
    }

    #[test]
    fn a_held_lock_past_the_deadline_means_no_write() {
        let dir = tempfile::tempdir().unwrap();
        let auth = dir.path().join("auth.json");
        fs::write(&auth, AUTH).unwrap();
        let holder = fs::File::create(dir.path().join("auth.lock")).unwrap();
        holder.lock().unwrap();
        let error = edit(
            &auth,
            Duration::from_millis(120),
            Bom::Refuse,
            |_, document| set_status(document, "dead"),
        )
        .unwrap_err();
        assert_eq!(error.result(), WriteResult::LockTimeout);
        assert_eq!(fs::read_to_string(&auth).unwrap(), AUTH);
    }

    #[test]
    fn a_byte_order_mark_is_kept_or_the_file_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let auth = dir.path().join("auth.json");
        let marked = [BOM, AUTH.as_bytes()].concat();
        fs::write(&auth, &marked).unwrap();
        let error = edit(&auth, Duration::from_secs(1), Bom::Refuse, |_, document| {
            set_status(document, "dead")
        })
        .unwrap_err();
        assert_eq!(error.result(), WriteResult::ParseError);
        assert!(error.to_string().contains("byte-order mark"), "{error}");
        assert_eq!(fs::read(&auth).unwrap(), marked, "nothing written");

        let edited = edit(&auth, Duration::from_secs(1), Bom::Keep, |_, document| {
            set_status(document, "dead")
        })
        .unwrap();
        assert!(edited.written);
        let expected = AUTH.replace("\"last_status\": null", "\"last_status\": \"dead\"");
        assert_eq!(
            fs::read(&auth).unwrap(),
            [BOM, expected.as_bytes()].concat()
        );
    }
}
