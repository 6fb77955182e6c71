//! Files, through the blocking pool.
//!
//! epoll cannot wait for a regular file (it is always "ready", and a read may still
//! sleep on the disk), so every call here runs on the blocking pool while the calling
//! green thread sleeps ([`crate::task::spawn_blocking`]); other threads of its CPU keep
//! running. The names mirror `std::fs`. From a plain OS thread the calls simply run in
//! place.
//!
//! ```
//! let rt = preempt::Runtime::builder().build()?;
//! let dir = std::env::temp_dir().join(format!("preempt-fs-doc-{}", std::process::id()));
//! let text = rt.block_on(move || {
//!     preempt::fs::write(&dir, "hello")?;
//!     let t = preempt::fs::read_to_string(&dir)?;
//!     std::fs::remove_file(&dir)?;
//!     Ok::<_, std::io::Error>(t)
//! })?;
//! assert_eq!(text, "hello");
//! # Ok::<(), std::io::Error>(())
//! ```

use crate::io::blocking;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Reads a whole file into a `Vec` (std's [`std::fs::read`]).
///
/// # Errors
/// The OS error of opening or reading the file.
pub fn read<P: AsRef<Path>>(path: P) -> io::Result<Vec<u8>> {
    let path = path.as_ref().to_path_buf();
    blocking::run(move || std::fs::read(path))?
}

/// Reads a whole file into a `String` (std's [`std::fs::read_to_string`]).
///
/// # Errors
/// The OS error, or `InvalidData` if the contents are not UTF-8.
pub fn read_to_string<P: AsRef<Path>>(path: P) -> io::Result<String> {
    let path = path.as_ref().to_path_buf();
    blocking::run(move || std::fs::read_to_string(path))?
}

/// Writes `contents` to a file, creating or truncating it (std's [`std::fs::write`]).
///
/// # Errors
/// The OS error of creating or writing the file.
pub fn write<P: AsRef<Path>, C: AsRef<[u8]>>(path: P, contents: C) -> io::Result<()> {
    let path = path.as_ref().to_path_buf();
    let contents = contents.as_ref().to_vec();
    blocking::run(move || std::fs::write(path, contents))?
}

/// An open file whose reads, writes and syncs run on the blocking pool.
///
/// Implements `Read`, `Write` and `Seek` like [`std::fs::File`] (each call copies
/// through a buffer owned by the job, so the caller's buffer never crosses threads).
#[derive(Debug, Clone)]
pub struct File {
    inner: Arc<std::fs::File>,
}

impl File {
    /// Opens a file for reading (std's [`std::fs::File::open`]).
    ///
    /// # Errors
    /// The OS error (`NotFound`, `PermissionDenied`, …).
    pub fn open<P: AsRef<Path>>(path: P) -> io::Result<File> {
        let path: PathBuf = path.as_ref().to_path_buf();
        Ok(File::from_std(blocking::run(move || {
            std::fs::File::open(path)
        })??))
    }

    /// Creates or truncates a file for writing (std's [`std::fs::File::create`]).
    ///
    /// # Errors
    /// The OS error.
    pub fn create<P: AsRef<Path>>(path: P) -> io::Result<File> {
        let path: PathBuf = path.as_ref().to_path_buf();
        Ok(File::from_std(blocking::run(move || {
            std::fs::File::create(path)
        })??))
    }

    /// Opens a file with `std`'s options (`OpenOptions::new().append(true)…`).
    ///
    /// # Errors
    /// The OS error.
    pub fn open_with<P: AsRef<Path>>(path: P, options: &std::fs::OpenOptions) -> io::Result<File> {
        let path: PathBuf = path.as_ref().to_path_buf();
        let options = options.clone();
        Ok(File::from_std(blocking::run(move || options.open(path))??))
    }

    /// Wraps an open `std` file.
    pub fn from_std(file: std::fs::File) -> File {
        File {
            inner: Arc::new(file),
        }
    }

    /// Runs `f` on the file on the blocking pool.
    fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&std::fs::File) -> io::Result<T> + Send + 'static,
    ) -> io::Result<T> {
        let file = self.inner.clone();
        blocking::run(move || f(&file))?
    }

    /// Flushes data and metadata to the device (`fsync`).
    ///
    /// # Errors
    /// The OS error.
    pub fn sync_all(&self) -> io::Result<()> {
        self.run(|f| f.sync_all())
    }

    /// Flushes data to the device (`fdatasync`).
    ///
    /// # Errors
    /// The OS error.
    pub fn sync_data(&self) -> io::Result<()> {
        self.run(|f| f.sync_data())
    }

    /// Truncates or extends the file.
    ///
    /// # Errors
    /// The OS error.
    pub fn set_len(&self, size: u64) -> io::Result<()> {
        self.run(move |f| f.set_len(size))
    }

    /// The file's metadata.
    ///
    /// # Errors
    /// The OS error.
    pub fn metadata(&self) -> io::Result<std::fs::Metadata> {
        self.run(|f| f.metadata())
    }
}

impl Read for File {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let len = buf.len();
        let data = self.run(move |mut f| {
            let mut v = vec![0; len];
            let n = f.read(&mut v)?;
            v.truncate(n);
            Ok(v)
        })?;
        buf[..data.len()].copy_from_slice(&data);
        Ok(data.len())
    }

    fn read_to_end(&mut self, buf: &mut Vec<u8>) -> io::Result<usize> {
        let data = self.run(|mut f| {
            let mut v = Vec::new();
            f.read_to_end(&mut v)?;
            Ok(v)
        })?;
        buf.extend_from_slice(&data);
        Ok(data.len())
    }
}

impl Write for File {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let data = buf.to_vec();
        self.run(move |mut f| f.write(&data))
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        let data = buf.to_vec();
        self.run(move |mut f| f.write_all(&data))
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Seek for File {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.run(move |mut f| f.seek(pos))
    }
}
