//! At every tick, appends `(timestamp, n)` to the `ticks` table of the
//! default SQLite database, `n` counting the ticks so far. With
//! `CRON_TRAP_EVEN=1` in its environment it traps on every even tick
//! (after its row is written), so tests can see that a failed tick does
//! not stop the next one.
//!
//! The plugin's `handle-cron-event` is a synchronous export, so the guest
//! uses spin-sdk 5's synchronous APIs (a synchronous task may not block on
//! WASIp3's async ones).

wit_bindgen::generate!({
    world: "spin-cron",
    path: "../../../wit/triggers/deps/spin-cron",
});

use spin_sdk::sqlite::{Connection, Value};

struct Cron;

impl Guest for Cron {
    fn handle_cron_event(metadata: Metadata) -> Result<(), Error> {
        let n = record(metadata.timestamp).map_err(|e| Error::Other(format!("{e:#}")))?;
        if n % 2 == 0 && std::env::var("CRON_TRAP_EVEN").as_deref() == Ok("1") {
            core::arch::wasm32::unreachable();
        }
        Ok(())
    }
}

fn record(timestamp: u64) -> anyhow::Result<i64> {
    let db = Connection::open_default()?;
    db.execute(
        "CREATE TABLE IF NOT EXISTS ticks (ts INTEGER NOT NULL, n INTEGER NOT NULL)",
        &[],
    )?;
    let result = db.execute(
        "INSERT INTO ticks (ts, n) SELECT ?, COUNT(*) + 1 FROM ticks RETURNING n",
        &[Value::Integer(i64::try_from(timestamp)?)],
    )?;
    result
        .rows
        .first()
        .and_then(|row| row.get::<i64>(0))
        .ok_or_else(|| anyhow::anyhow!("INSERT returned no row"))
}

export!(Cron);
