//! Durable, private file writes and lock files, the way every state file and auth.json edit
//! needs them: a reader sees the old or the new content, never a mix, and nothing the warden
//! creates is readable by others. And bounded reads of the files the warden did not write:
//! whatever sits at a path (a FIFO, a device, a directory, a file of gigabytes), reading it
//! never blocks and never takes more memory than the limit for that kind of file.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, Read, Write};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// `auth.json`: Hermes's credential store. A pool of a few dozen OAuth entries is tens of
/// kilobytes; the limit leaves room for any real store and stops `/dev/zero`-like input.
pub const AUTH_JSON_LIMIT: u64 = 64 << 20;
/// `warden.toml` (or `--config FILE`): a dozen keys.
pub const CONFIG_LIMIT: u64 = 1 << 20;
/// One rule file of `<home>/warden/rules.d` or `--rules DIR`: the built-in rules are a few KiB.
pub const RULE_FILE_LIMIT: u64 = 1 << 20;
/// Hermes's `config.yaml`, read for the compression provider.
pub const HERMES_CONFIG_LIMIT: u64 = 1 << 20;
/// The first line of the `hermes` script (its `#!` interpreter line; Linux itself reads at most
/// 256 bytes of it). Only this line is read, never the whole program.
pub const SCRIPT_LINE_LIMIT: u64 = 4 << 10;
/// `<home>/warden/ledger.json`: one small object per dead mark and revival.
pub const LEDGER_LIMIT: u64 = 64 << 20;
/// `<home>/warden/checkpoints.json`: one position per log file and identity.
pub const CHECKPOINTS_LIMIT: u64 = 64 << 20;

/// What was wrong with a file, and its path: the payload of the `io::Error`s of the readers
/// here, which therefore name the file (`<path>: not a regular file (a FIFO)`).
#[derive(Debug)]
struct FileProblem {
    path: PathBuf,
    problem: String,
    /// Whether the problem is that the path leads to something other than a regular file.
    not_regular: bool,
}

impl std::fmt::Display for FileProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.problem)
    }
}

impl std::error::Error for FileProblem {}

fn file_problem(path: &Path, kind: io::ErrorKind, problem: impl Into<String>) -> io::Error {
    io::Error::new(
        kind,
        FileProblem {
            path: path.to_owned(),
            problem: problem.into(),
            not_regular: false,
        },
    )
}

fn problem_of(error: &io::Error) -> Option<&FileProblem> {
    error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<FileProblem>())
}

/// Whether `error` (of the readers here) says the path leads to something other than a
/// regular file: a FIFO, a device, a directory, a socket.
pub fn is_not_regular(error: &io::Error) -> bool {
    problem_of(error).is_some_and(|problem| problem.not_regular)
}

/// An error of the readers here without the path in front (same kind), for a caller whose own
/// message names the file already; any other error as it is.
pub fn without_path(error: io::Error) -> io::Error {
    match problem_of(&error) {
        Some(problem) => io::Error::new(error.kind(), problem.problem.clone()),
        None => error,
    }
}

/// `64 MiB`, `4 KiB`, `100 bytes`.
fn size_text(bytes: u64) -> String {
    match bytes {
        _ if bytes >= 1 << 20 && bytes.is_multiple_of(1 << 20) => format!("{} MiB", bytes >> 20),
        _ if bytes >= 1 << 10 && bytes.is_multiple_of(1 << 10) => format!("{} KiB", bytes >> 10),
        _ => format!("{bytes} bytes"),
    }
}

fn too_large(path: &Path, limit: u64) -> io::Error {
    file_problem(
        path,
        io::ErrorKind::FileTooLarge,
        format!("larger than {}", size_text(limit)),
    )
}

/// An error unless `metadata` (of the file a path leads to) is a regular file.
fn check_regular(path: &Path, metadata: &fs::Metadata) -> io::Result<()> {
    let file_type = metadata.file_type();
    if file_type.is_file() {
        return Ok(());
    }
    let what = if file_type.is_dir() {
        "a directory"
    } else if file_type.is_fifo() {
        "a FIFO"
    } else if file_type.is_char_device() {
        "a character device"
    } else if file_type.is_block_device() {
        "a block device"
    } else if file_type.is_socket() {
        "a socket"
    } else {
        "of an unknown type"
    };
    let kind = match file_type.is_dir() {
        true => io::ErrorKind::IsADirectory,
        false => io::ErrorKind::InvalidInput,
    };
    Err(io::Error::new(
        kind,
        FileProblem {
            path: path.to_owned(),
            problem: format!("not a regular file ({what})"),
            not_regular: true,
        },
    ))
}

/// Opens `path` for reading if it is (after following symlinks) a regular file, `None` when
/// nothing is there. See [`open_regular_with`].
pub fn open_regular(path: &Path) -> io::Result<Option<(File, fs::Metadata)>> {
    open_regular_with(path, OpenOptions::new().read(true).clone())
}

/// Opens `path` with `options` (whose custom flags are replaced) if it is, after following
/// symlinks, a regular file; `None` when nothing is there. Anything else (a FIFO, a device, a
/// directory, a socket) is an error naming the path and what is there, and is never opened
/// in a way that could block: the type is looked at first, the file is opened with
/// `O_NONBLOCK | O_NOCTTY` (a FIFO swapped in meanwhile does not block the open), and the
/// opened file is checked again. Returns the opened file's metadata too.
pub fn open_regular_with(
    path: &Path,
    mut options: OpenOptions,
) -> io::Result<Option<(File, fs::Metadata)>> {
    let in_path = |error: io::Error| file_problem(path, error.kind(), error.to_string());
    // Opening some devices does something (a tape rewinds); look before opening.
    match fs::metadata(path) {
        Ok(metadata) => check_regular(path, &metadata)?,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(in_path(error)),
    }
    options.custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY);
    let file = match options.open(path) {
        Ok(file) => file,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(in_path(error)),
    };
    let metadata = file.metadata().map_err(in_path)?;
    check_regular(path, &metadata)?;
    // A regular file: back to ordinary blocking reads (O_NONBLOCK only guarded the open).
    set_blocking(&file).map_err(in_path)?;
    Ok(Some((file, metadata)))
}

fn set_blocking(file: &File) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let fd = file.as_raw_fd();
    // SAFETY: fcntl on a descriptor `file` owns; no memory is passed.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: as above.
    if unsafe { libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The whole of the regular file at `path` (after following symlinks), `None` when nothing is
/// there. Never blocks (see [`open_regular_with`]); a file larger than `limit` bytes is an
/// error (`io::ErrorKind::FileTooLarge`, `<path>: larger than 64 MiB`), and at most
/// `limit + 1` bytes are ever read, so a file growing while it is read is bounded too. Every
/// error names the path.
pub fn read_limited(path: &Path, limit: u64) -> io::Result<Option<Vec<u8>>> {
    Ok(read_regular(path, limit)?.map(|(bytes, _)| bytes))
}

/// [`read_limited`], with the metadata of the file that was read.
pub fn read_regular(path: &Path, limit: u64) -> io::Result<Option<(Vec<u8>, fs::Metadata)>> {
    let Some((file, metadata)) = open_regular(path)? else {
        return Ok(None);
    };
    if metadata.len() > limit {
        return Err(too_large(path, limit));
    }
    let mut bytes = Vec::with_capacity(metadata.len() as usize + 1);
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|error| file_problem(path, error.kind(), error.to_string()))?;
    if bytes.len() as u64 > limit {
        return Err(too_large(path, limit));
    }
    Ok(Some((bytes, metadata)))
}

/// The first line (without its newline) of the regular file at `path`, `None` when nothing is
/// there; at most `limit + 1` bytes are read, whatever the file's size. A first line longer
/// than `limit` is an error of kind `InvalidData` (`<path>: first line longer than 4 KiB`);
/// other errors as [`read_limited`]'s.
pub fn read_first_line(path: &Path, limit: u64) -> io::Result<Option<Vec<u8>>> {
    let Some((file, _)) = open_regular(path)? else {
        return Ok(None);
    };
    let mut line = Vec::new();
    io::BufReader::new(file.take(limit + 1))
        .read_until(b'\n', &mut line)
        .map_err(|error| file_problem(path, error.kind(), error.to_string()))?;
    if line.last() == Some(&b'\n') {
        line.pop();
    } else if line.len() as u64 > limit {
        return Err(file_problem(
            path,
            io::ErrorKind::InvalidData,
            format!("first line longer than {}", size_text(limit)),
        ));
    }
    Ok(Some(line))
}

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
    replace(path, bytes, owner, 0o600)
}

/// [`write_atomically`] for a file other users read (mode 0644): the metrics for
/// node_exporter's textfile collector, which hold no secret.
pub fn publish_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    replace(path, bytes, None, 0o644)
}

fn replace(path: &Path, bytes: &[u8], owner: Option<(u32, u32)>, mode: u32) -> io::Result<()> {
    let dir = match path.parent() {
        Some(dir) if dir.as_os_str().is_empty() => Path::new("."),
        Some(dir) => dir,
        None => return Err(io::Error::other("no parent directory")),
    };
    let mut temp = tempfile::Builder::new()
        .prefix(".tmp-")
        .permissions(fs::Permissions::from_mode(mode))
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

/// Reads the next line of `reader` into `line` (without its `\n`), keeping at most `max`
/// bytes of it: `Some(true)` a whole line, `Some(false)` a longer one (its first `max` bytes
/// kept, the rest read past), `None` at the end. Memory stays bounded whatever the file holds.
pub fn read_line_limited(
    reader: &mut impl BufRead,
    line: &mut Vec<u8>,
    max: usize,
) -> io::Result<Option<bool>> {
    line.clear();
    let mut whole = true;
    let mut any = false;
    loop {
        let buffer = reader.fill_buf()?;
        if buffer.is_empty() {
            return Ok(any.then_some(whole));
        }
        any = true;
        let (taken, done) = match memchr::memchr(b'\n', buffer) {
            Some(newline) => (newline, true),
            None => (buffer.len(), false),
        };
        let room = max - line.len().min(max);
        whole &= taken <= room;
        line.extend_from_slice(&buffer[..taken.min(room)]);
        reader.consume(taken + usize::from(done));
        if done {
            return Ok(Some(whole));
        }
    }
}

/// Opens for appending (creating it with mode 0600 if needed) a file that is only ever
/// appended to or `flock`ed, never replaced: a lock file, whose inode must stay the same for
/// every process that locks it, or the audit log. Anything but a regular file in its place (a
/// FIFO, whose open would wait for a reader; a device; a directory) is an error, found without
/// blocking. Errors, like `OpenOptions::open`'s, do not name the path: the callers do.
pub fn open_append(path: &Path) -> io::Result<File> {
    match fs::metadata(path) {
        Ok(metadata) => check_regular(path, &metadata).map_err(without_path)?,
        Err(error) if error.kind() == io::ErrorKind::NotFound => {}
        Err(error) => return Err(error),
    }
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)?;
    check_regular(path, &file.metadata()?).map_err(without_path)?;
    set_blocking(&file)?;
    Ok(file)
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
    fn lines_are_read_whole_or_cut_to_the_limit() {
        let text = b"short\nexactly8\nmuch longer than eight\n\nlast, unterminated";
        // A small buffer, so that lines cross its refills.
        let mut reader = io::BufReader::with_capacity(3, &text[..]);
        let mut line = Vec::new();
        let mut lines = Vec::new();
        while let Some(whole) = read_line_limited(&mut reader, &mut line, 8).unwrap() {
            lines.push((String::from_utf8(line.clone()).unwrap(), whole));
        }
        let expected = [
            ("short", true),
            ("exactly8", true),
            ("much lon", false),
            ("", true),
            ("last, un", false),
        ];
        let expected: Vec<(String, bool)> =
            expected.iter().map(|(l, w)| (l.to_string(), *w)).collect();
        assert_eq!(lines, expected);
    }

    fn mkfifo(path: &Path) {
        use std::os::unix::ffi::OsStrExt;
        let name = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(name.as_ptr(), 0o600) }, 0, "mkfifo");
    }

    #[test]
    fn bounded_reads_refuse_what_is_not_a_regular_file_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        mkfifo(&fifo);
        let zero = dir.path().join("zero");
        std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
        for (path, what, kind) in [
            (&fifo, "a FIFO", io::ErrorKind::InvalidInput),
            (&zero, "a character device", io::ErrorKind::InvalidInput),
            (
                &dir.path().to_owned(),
                "a directory",
                io::ErrorKind::IsADirectory,
            ),
        ] {
            for error in [
                read_limited(path, 1 << 20).unwrap_err(),
                read_first_line(path, 4096).unwrap_err(),
            ] {
                assert_eq!(error.kind(), kind);
                assert!(is_not_regular(&error));
                assert_eq!(
                    error.to_string(),
                    format!("{}: not a regular file ({what})", path.display())
                );
                assert_eq!(
                    without_path(error).to_string(),
                    format!("not a regular file ({what})")
                );
            }
        }
        assert!(
            read_limited(&dir.path().join("missing"), 10)
                .unwrap()
                .is_none()
        );
        let error = open_append(&fifo).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
        assert_eq!(error.to_string(), "not a regular file (a FIFO)");
        open_append(&dir.path().join("new.lock")).unwrap();
    }

    #[test]
    fn bounded_reads_refuse_a_file_over_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big");
        fs::write(&path, vec![b'x'; 2048]).unwrap();
        assert_eq!(read_limited(&path, 2048).unwrap().unwrap().len(), 2048);
        let error = read_limited(&path, 1024).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::FileTooLarge);
        assert!(!is_not_regular(&error));
        assert_eq!(
            error.to_string(),
            format!("{}: larger than 1 KiB", path.display())
        );
        assert_eq!(size_text(64 << 20), "64 MiB");
        assert_eq!(size_text(100), "100 bytes");
    }

    #[test]
    fn the_first_line_is_read_alone_and_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("script");
        let mut script = b"#!/venv/bin/python\n".to_vec();
        script.extend(vec![b'x'; 100_000]);
        fs::write(&path, &script).unwrap();
        assert_eq!(
            read_first_line(&path, 64).unwrap().unwrap(),
            b"#!/venv/bin/python"
        );
        fs::write(&path, "no newline").unwrap();
        assert_eq!(read_first_line(&path, 64).unwrap().unwrap(), b"no newline");
        fs::write(&path, vec![b'x'; 65]).unwrap();
        let error = read_first_line(&path, 64).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
        assert!(
            error
                .to_string()
                .ends_with(": first line longer than 64 bytes")
        );
    }

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
