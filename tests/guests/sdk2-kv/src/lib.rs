//! spin-sdk 2.x guest: `?key=K&value=V` stores V under K in the default
//! key-value store, reads it back and answers with it and the `greeting`
//! variable, so a test sees both APIs of this SDK generation work; on a
//! path ending in `/fetch`, `?url=U` GETs U through the SDK's outbound
//! HTTP and answers with the status and body it got; on one ending in
//! `/echo`, it answers with the request's body.

use spin_sdk::http::{IntoResponse, Request, Response};
use spin_sdk::http_component;

#[http_component]
async fn handle(req: Request) -> anyhow::Result<impl IntoResponse> {
    let param = |name: &str| {
        req.query()
            .split('&')
            .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
            .unwrap_or_default()
            .to_owned()
    };
    if req.path().ends_with("/echo") {
        return Ok(Response::new(200, req.body().to_vec()));
    }
    if req.path().ends_with("/fetch") {
        let got: Response = spin_sdk::http::send(Request::get(param("url")).build()).await?;
        let body = format!(
            "sdk=2 fetched {} {}\n",
            got.status(),
            String::from_utf8_lossy(got.body())
        );
        return Ok(Response::new(200, body));
    }
    let (key, value) = (param("key"), param("value"));
    let store = spin_sdk::key_value::Store::open_default()?;
    store.set(&key, value.as_bytes())?;
    let got = store.get(&key)?.unwrap_or_default();
    let greeting = spin_sdk::variables::get("greeting")?;
    let body = format!(
        "sdk=2 kv={} var={greeting}\n",
        String::from_utf8_lossy(&got)
    );
    Ok(Response::new(200, body))
}
