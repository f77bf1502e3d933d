//! Opening an embedded SQLite file the way every store of ours wants it:
//! its directory created, a busy timeout, and WAL mode (readers never block
//! the writer; a commit is one sequential, synced write). Shared by the
//! key-value stores and the SQLite databases.

use std::path::Path;
use std::time::Duration;

use rusqlite::Connection;

/// How long a statement waits in SQLite's busy handler before it fails as
/// `database is locked`.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Opens `path` with `busy_timeout`; switches the file to WAL when `wal` is
/// set (once per file is enough: the mode is stored in the file, and the
/// switch needs the file to itself).
pub fn open(path: &Path, busy_timeout: Duration, wal: bool) -> rusqlite::Result<Connection> {
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let conn = Connection::open(path)?;
    conn.busy_timeout(busy_timeout)?;
    if wal {
        conn.pragma_update(None, "journal_mode", "WAL")?;
    }
    Ok(conn)
}
