//! Files of the load-time caches (compiled components, compositions): the
//! SHA-256 of the payload, then the payload.
//!
//! The checksum makes a truncated, corrupted or foreign file a miss instead
//! of input to a deserializer that trusts its bytes. Writes go to a fresh
//! temporary file in the entry's directory that is then renamed over the
//! entry, so a reader sees the old entry or the whole new one, and any number
//! of writers, threads or processes, can write the same entry at once.

use std::io::Write as _;
use std::ops::Deref;
use std::path::Path;

use sha2::{Digest, Sha256};

/// Bytes of the checksum at the start of every file.
const DIGEST_LEN: usize = 32;

/// What a cache file holds.
#[derive(Debug)]
pub(crate) enum Entry {
    /// No file (or one that cannot be read): a plain miss.
    Missing,
    /// A file whose checksum does not match its payload; callers log it
    /// and replace it.
    Corrupt,
    /// The payload, checked.
    Intact(Payload),
}

/// A checked payload; the file's bytes with the checksum skipped, so a
/// large entry is not copied to drop its first bytes.
#[derive(Debug)]
pub(crate) struct Payload(Vec<u8>);

impl Deref for Payload {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.0[DIGEST_LEN..]
    }
}

impl Payload {
    /// The payload as an owned vector.
    pub(crate) fn into_vec(mut self) -> Vec<u8> {
        self.0.drain(..DIGEST_LEN);
        self.0
    }
}

/// Reads the cache file at `path` and checks its checksum.
pub(crate) fn read(path: &Path) -> Entry {
    let Ok(bytes) = std::fs::read(path) else {
        return Entry::Missing;
    };
    match bytes.split_at_checked(DIGEST_LEN) {
        Some((digest, payload)) if Sha256::digest(payload).as_slice() == digest => {
            Entry::Intact(Payload(bytes))
        }
        _ => Entry::Corrupt,
    }
}

/// Writes `payload` to the cache file at `path`, creating its directory,
/// and atomically replacing any entry already there.
pub(crate) fn write(path: &Path, payload: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut file = tempfile::NamedTempFile::new_in(dir)?;
    file.write_all(&Sha256::digest(payload))?;
    file.write_all(payload)?;
    file.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// Lowercase hex of `bytes`, for cache keys used as file names.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_read_back_and_missing_ones_are_misses() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("sub").join("entry.bin");
        assert!(matches!(read(&path), Entry::Missing));
        write(&path, b"payload").expect("write");
        let Entry::Intact(payload) = read(&path) else {
            panic!("entry not intact")
        };
        assert_eq!(&*payload, b"payload");
        assert_eq!(payload.into_vec(), b"payload");
        // Rewriting replaces the entry.
        write(&path, b"other").expect("rewrite");
        assert!(matches!(read(&path), Entry::Intact(p) if &*p == b"other"));
    }

    #[test]
    fn corrupt_files_are_refused() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("entry.bin");
        write(&path, b"the payload").expect("write");
        let mut bytes = std::fs::read(&path).expect("read");
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(&path, &bytes).expect("corrupt");
        assert!(matches!(read(&path), Entry::Corrupt));
        // Truncated, even below the checksum's length, and empty.
        std::fs::write(&path, &bytes[..10]).expect("truncate");
        assert!(matches!(read(&path), Entry::Corrupt));
        std::fs::write(&path, b"").expect("empty");
        assert!(matches!(read(&path), Entry::Corrupt));
    }

    #[test]
    fn writers_of_one_entry_at_once_all_succeed() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("entry.bin");
        let payload: Vec<u8> = (0..1 << 20).map(|i| (i % 251) as u8).collect();
        let barrier = std::sync::Barrier::new(2);
        std::thread::scope(|s| {
            let writers: Vec<_> = (0..2)
                .map(|_| {
                    s.spawn(|| {
                        barrier.wait();
                        for _ in 0..20 {
                            write(&path, &payload)?;
                        }
                        Ok::<_, std::io::Error>(())
                    })
                })
                .collect();
            for writer in writers {
                writer
                    .join()
                    .expect("no panic")
                    .expect("every write succeeds");
            }
        });
        let Entry::Intact(read_back) = read(&path) else {
            panic!("entry not intact")
        };
        assert_eq!(*read_back, *payload);
        // No temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, ["entry.bin"]);
    }

    #[test]
    fn hex_is_lowercase_and_padded() {
        assert_eq!(hex(&[0x00, 0x0f, 0xab, 0xff]), "000fabff");
    }
}
