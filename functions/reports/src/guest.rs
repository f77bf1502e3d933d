//! The component's exports: the cron tick and the HTTP reader.

use anyhow::{Context as _, anyhow, bail};
use serde_json::{Value as Json, json};
use spin_sdk::http::{IntoResponse, Method, Request, Response};
use spin_sdk::http_component;
use spin_sdk::key_value::Store;

use crate::summary::{self, Answers, Window};

wit_bindgen::generate!({
    world: "spin-cron",
    path: "../../wit/triggers/deps/spin-cron",
});

/// Where the query API is reached (service chaining, in process).
const QUERY: &str = "http://query.spin.internal/api/v1";
/// The key prefix of a source's reports; each key ends in the tick, zero
/// padded, so keys sort by time and no index needs updating (ticks may
/// overlap).
fn prefix(source: &str) -> String {
    format!("report:{source}:")
}
/// Reports kept per source.
const KEEP: usize = 500;

struct Cron;

impl Guest for Cron {
    fn handle_cron_event(metadata: Metadata) -> Result<(), Error> {
        spin_sdk::http::run(tick(metadata.timestamp)).map_err(|e| Error::Other(format!("{e:#}")))
    }
}

export!(Cron);

/// One report per source that a read token reads.
async fn tick(timestamp: u64) -> anyhow::Result<()> {
    let tokens = spin_sdk::variables::get("read_tokens").context("read_tokens")?;
    let mut seen = Vec::new();
    for (token, source) in tokens
        .split(',')
        .filter_map(|pair| pair.trim().split_once('='))
    {
        if seen.contains(&source) {
            continue;
        }
        seen.push(source);
        let report = build(token, source, timestamp).await?;
        store(source, &report)?;
        notify(&report).await?;
    }
    Ok(())
}

/// The report of `source` for the week before `timestamp`.
async fn build(token: &str, source: &str, timestamp: u64) -> anyhow::Result<Json> {
    let now_ms = i64::try_from(timestamp)?.saturating_mul(1000);
    let window = Window::ending_at(now_ms);
    let daily = get(
        token,
        &format!(
            "/counts?bucket=day&from={}&to={}",
            window.previous_from - summary::DAY_MS + 1,
            window.to
        ),
    )
    .await?;
    let by_event = get(
        token,
        &format!(
            "/counts?bucket=day&group_by=event&from={}&to={}",
            window.from - summary::DAY_MS + 1,
            window.to
        ),
    )
    .await?;
    let steps = spin_sdk::variables::get("report_funnel").unwrap_or_default();
    let funnel = if steps.trim().is_empty() {
        None
    } else {
        Some(
            get(
                token,
                &format!(
                    "/funnel?steps={}&from={}&to={}",
                    encode(steps.trim()),
                    window.from,
                    window.to
                ),
            )
            .await?,
        )
    };
    let dead = get(token, "/dead-letters?limit=1000").await?;
    let dead_letters = dead["rows"].as_array().cloned().unwrap_or_default();
    Ok(summary::report(
        source,
        timestamp,
        window,
        &Answers {
            daily: &daily,
            by_event: &by_event,
            funnel: funnel.as_ref(),
            dead_letters: &dead_letters,
        },
    ))
}

/// `GET QUERY{path}` with `token`, as JSON.
async fn get(token: &str, path: &str) -> anyhow::Result<Json> {
    let request = Request::get(format!("{QUERY}{path}"))
        .header("authorization", format!("Bearer {token}"))
        .build();
    let response: Response = spin_sdk::http::send(request)
        .await
        .with_context(|| format!("query {path}"))?;
    let status = *response.status();
    let body: Json = serde_json::from_slice(response.body())
        .with_context(|| format!("query {path}: not JSON (status {status})"))?;
    if status != 200 {
        bail!("query {path}: {status} {body}");
    }
    Ok(body)
}

/// Keeps `report` under its source and tick, dropping the oldest past
/// [`KEEP`].
fn store(source: &str, report: &Json) -> anyhow::Result<()> {
    let store = Store::open_default().map_err(|e| anyhow!("key-value: {e:?}"))?;
    let tick = report["tick"].as_u64().context("report tick")?;
    store
        .set(
            &format!("{}{tick:020}", prefix(source)),
            report.to_string().as_bytes(),
        )
        .map_err(|e| anyhow!("key-value: {e:?}"))?;
    let keys = keys(&store, source)?;
    for old in keys.iter().take(keys.len().saturating_sub(KEEP)) {
        let _ = store.delete(old);
    }
    Ok(())
}

/// A source's report keys, oldest first.
fn keys(store: &Store, source: &str) -> anyhow::Result<Vec<String>> {
    let prefix = prefix(source);
    let mut keys: Vec<String> = store
        .get_keys()
        .map_err(|e| anyhow!("key-value: {e:?}"))?
        .into_iter()
        .filter(|k| k.starts_with(&prefix))
        .collect();
    keys.sort();
    Ok(keys)
}

/// Posts the report's chat message to `report_webhook_url`, if set.
async fn notify(report: &Json) -> anyhow::Result<()> {
    let url = spin_sdk::variables::get("report_webhook_url").unwrap_or_default();
    if url.trim().is_empty() {
        return Ok(());
    }
    let body = summary::chat_message(report).to_string();
    let request = Request::post(url.trim(), body)
        .header("content-type", "application/json")
        .build();
    let response: Response = spin_sdk::http::send(request)
        .await
        .context("report webhook")?;
    if !(200..300).contains(response.status()) {
        bail!("report webhook answered {}", response.status());
    }
    Ok(())
}

/// Percent-encodes a query value.
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `GET /api/reports`: the token's source's reports, newest first.
#[http_component]
fn serve(req: Request) -> anyhow::Result<impl IntoResponse> {
    if *req.method() != Method::Get {
        return Ok(error(405, "method_not_allowed", "use GET"));
    }
    let Some(token) = req
        .header("authorization")
        .and_then(|v| v.as_str())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
    else {
        return Ok(error(
            401,
            "unauthorized",
            "send Authorization: Bearer TOKEN",
        ));
    };
    let tokens = spin_sdk::variables::get("read_tokens").context("read_tokens")?;
    let Some(source) = tokens
        .split(',')
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == token)
        .map(|(_, s)| s.to_owned())
    else {
        return Ok(error(403, "forbidden", "unknown token"));
    };
    let store = Store::open_default().map_err(|e| anyhow!("key-value: {e:?}"))?;
    let mut reports = Vec::new();
    for key in keys(&store, &source)?.iter().rev() {
        if let Some(bytes) = store.get(key).map_err(|e| anyhow!("key-value: {e:?}"))? {
            reports.push(serde_json::from_slice::<Json>(&bytes)?);
        }
    }
    let csv = req.query().split('&').any(|p| p == "format=csv")
        || req
            .header("accept")
            .and_then(|v| v.as_str())
            .is_some_and(|a| a.contains("text/csv"));
    if csv {
        let mut out = String::from(summary::CSV_HEADER);
        out.push('\n');
        for report in &reports {
            out.push_str(&summary::csv_row(report));
            out.push('\n');
        }
        return Ok(Response::builder()
            .status(200)
            .header("content-type", "text/csv; charset=utf-8")
            .body(out)
            .build());
    }
    Ok(Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .body(json!({ "reports": reports }).to_string())
        .build())
}

fn error(status: u16, code: &str, message: &str) -> Response {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(json!({"error": code, "message": message}).to_string())
        .build()
}
