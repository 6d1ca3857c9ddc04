//! Reading the small files a user names (the web configuration and the certificates it names,
//! remote_write credentials and TLS files), which may be re-read while the server runs: only
//! regular files, opened without blocking and read up to a bound, so that a FIFO, a device
//! (`/dev/zero`) or a huge file put at the path cannot hang a thread or eat memory.

use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// The bytes of the regular file at `path` (symbolic links followed), at most `max_bytes`.
/// Errors: the file cannot be opened; it is not a regular file (a FIFO, a device, a
/// directory: refused without waiting for a writer or reading a byte); it is larger than
/// `max_bytes` (refused from its size, before reading); or reading fails.
pub(crate) fn read_regular(path: &Path, max_bytes: u64) -> std::io::Result<Vec<u8>> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        // Opening a FIFO for reading otherwise waits for a writer, for ever.
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(std::io::Error::other(
            "not a regular file (a FIFO, a device or a directory)",
        ));
    }
    if meta.len() > max_bytes {
        return Err(std::io::Error::other(format!(
            "larger than {max_bytes} bytes"
        )));
    }
    let mut bytes = Vec::new();
    // The file may grow between the size check and the read.
    file.take(max_bytes + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max_bytes {
        return Err(std::io::Error::other(format!(
            "larger than {max_bytes} bytes"
        )));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifos_devices_directories_and_huge_files_are_refused_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let name = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path and a mode.
        assert_eq!(unsafe { libc::mkfifo(name.as_ptr(), 0o600) }, 0);
        // Without O_NONBLOCK this open would wait for a writer for ever.
        let error = read_regular(&fifo, 1024).unwrap_err();
        assert!(error.to_string().contains("not a regular file"), "{error}");
        let link = dir.path().join("zero");
        std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
        let error = read_regular(&link, 1024).unwrap_err();
        assert!(error.to_string().contains("not a regular file"), "{error}");
        let error = read_regular(dir.path(), 1024).unwrap_err();
        assert!(error.to_string().contains("not a regular file"), "{error}");
        let big = dir.path().join("big");
        std::fs::write(&big, vec![b'x'; 2048]).unwrap();
        let error = read_regular(&big, 1024).unwrap_err();
        assert!(error.to_string().contains("larger than 1024"), "{error}");
        let small = dir.path().join("small");
        std::fs::write(&small, b"hello").unwrap();
        assert_eq!(read_regular(&small, 5).unwrap(), b"hello");
        let through = dir.path().join("through");
        std::os::unix::fs::symlink(&small, &through).unwrap();
        assert_eq!(read_regular(&through, 5).unwrap(), b"hello");
    }
}
