//! spin-sdk 6.x guest (`wasi:http/handler@0.3.0-rc-2026-03-15`):
//! `?key=K&value=V` stores V under K in the default key-value store, reads
//! it back and answers with it and the `greeting` variable, so a test sees
//! both APIs of this SDK generation work.

use spin_sdk::http::{IntoResponse, Request};
use spin_sdk::http_service;

#[http_service]
async fn handle(req: Request) -> anyhow::Result<impl IntoResponse> {
    let query = req.uri().query().unwrap_or_default().to_owned();
    let param = |name: &str| {
        query
            .split('&')
            .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
            .unwrap_or_default()
            .to_owned()
    };
    let (key, value) = (param("key"), param("value"));
    let store = spin_sdk::key_value::Store::open_default().await?;
    store.set(&key, value.as_bytes()).await?;
    let got = store.get(&key).await?.unwrap_or_default();
    let greeting = spin_sdk::variables::get("greeting").await?;
    Ok(format!(
        "sdk=6 kv={} var={greeting}\n",
        String::from_utf8_lossy(&got)
    ))
}
