//! spin-sdk 7 Redis trigger guest (`spin:redis/inbound-redis@3.0.0`, an
//! `async func`). The same behaviour as the spin-sdk 5 guest: each payload
//! is appended to the list `{key}` at `{address}` (component variables);
//! `trap` panics and `fail` returns an error, neither recorded.

use spin_sdk::redis::{Connection, RedisParameter};
use spin_sdk::redis_subscriber;

#[redis_subscriber]
async fn on_message(message: bytes::Bytes) -> anyhow::Result<()> {
    match &message[..] {
        b"trap" => panic!("asked to trap"),
        b"fail" => anyhow::bail!("asked to fail"),
        _ => {}
    }
    let address = spin_sdk::variables::get("address").await?;
    let key = spin_sdk::variables::get("key").await?;
    let conn = Connection::open(&address)
        .await
        .map_err(|e| anyhow::anyhow!("open: {e:?}"))?;
    conn.execute(
        "RPUSH",
        vec![
            RedisParameter::Binary(key.into_bytes()),
            RedisParameter::Binary(message.to_vec()),
        ],
    )
    .await
    .map_err(|e| anyhow::anyhow!("RPUSH: {e:?}"))?;
    Ok(())
}
