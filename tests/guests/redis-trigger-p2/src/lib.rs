//! spin-sdk 5 Redis trigger guest (`fermyon:spin/inbound-redis`). For each
//! message it appends the payload to the list `{key}` on the Redis server
//! at `{address}` (component variables), so a test can count and read what
//! was delivered. Two payloads misbehave on purpose: `trap` panics (the
//! instance traps) and `fail` returns an error; neither is recorded.

use spin_sdk::redis::{Connection, RedisParameter};
use spin_sdk::redis_component;

#[redis_component]
fn on_message(message: bytes::Bytes) -> anyhow::Result<()> {
    match &message[..] {
        b"trap" => panic!("asked to trap"),
        b"fail" => anyhow::bail!("asked to fail"),
        _ => {}
    }
    let address = spin_sdk::variables::get("address")?;
    let key = spin_sdk::variables::get("key")?;
    let conn = Connection::open(&address).map_err(|e| anyhow::anyhow!("open: {e:?}"))?;
    conn.execute(
        "RPUSH",
        &[
            RedisParameter::Binary(key.into_bytes()),
            RedisParameter::Binary(message.to_vec()),
        ],
    )
    .map_err(|e| anyhow::anyhow!("RPUSH: {e:?}"))?;
    Ok(())
}
