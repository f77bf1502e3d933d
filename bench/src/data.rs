//! The data app's scenarios: ingest throughput (`POST /v1/batch`) and query
//! latency (`GET /api/counts`) through `trib` running the real `spin.toml`,
//! each beside the same SQLite work done natively with rusqlite.
//!
//! The native side never creates a schema of its own: the ingest function
//! migrates a fresh database (one empty batch), and the native runs use
//! that database (tables, indexes and `schema_migrations` rows exactly as
//! the function made them) with the functions' own statements.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use bytes::Bytes;
use http::{HeaderValue, Method};
use rusqlite::{Connection, TransactionBehavior, params};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use event_store::Param;
use event_store::hll::{SPARSE_LIMIT, STANDARD_ERROR};
use event_store::rollup::{self, Rollups, Selection};
use event_store::statements::{self, EVENT_COLUMNS, insert_events};

use crate::client::Client;
use crate::peers::{self, Server, Tools};

/// The source the default write key and read token belong to.
const SOURCE: &str = "dev";
/// `spin.toml`'s default write key (for source `dev`).
const WRITE_KEY: &str = "dev-write-key";
/// `spin.toml`'s default read token (for source `dev`).
const READ_TOKEN: &str = "dev-read-token";

/// The counts statement over every event without `group_by` or `event`
/// (`?1` source, `?2` bucket width, `?3`/`?4` the window), from the
/// event store the function uses: what the query function ran before
/// rollups, and the benchmark's reference answer.
fn counts_sql() -> String {
    statements::counts(statements::NO_GROUP, None)
}

/// 2026-01-01T00:00:00Z in milliseconds: every generated event falls in
/// the [`DAYS`] days after it.
const START_MS: i64 = 1_767_225_600_000;
const DAY_MS: i64 = 86_400_000;
/// Where the ingest benchmark's live traffic starts: after the seeded month.
const LIVE_START_MS: i64 = START_MS + DAYS * DAY_MS;
const HOUR_MS: i64 = 3_600_000;
/// Days the generated timestamps span.
const DAYS: i64 = 30;
/// Distinct users in the generated events.
const USERS: u64 = 500;
/// The generated event names.
const EVENT_NAMES: [&str; 20] = [
    "page_viewed",
    "signed_up",
    "logged_in",
    "logged_out",
    "product_viewed",
    "product_added",
    "product_removed",
    "cart_viewed",
    "checkout_started",
    "checkout_completed",
    "payment_failed",
    "search_performed",
    "filter_applied",
    "video_played",
    "video_paused",
    "file_uploaded",
    "file_downloaded",
    "invite_sent",
    "settings_changed",
    "subscription_renewed",
];
const PLANS: [&str; 3] = ["free", "pro", "enterprise"];
/// The seeded events stored as page views.
const PAGE_EVENT: &str = "page_viewed";
/// The seeded page views' referrers.
const REFERRERS: [&str; 4] = [
    "https://www.google.com/",
    "https://news.ycombinator.com/",
    "https://example.com/blog",
    "",
];
/// The reports timed over the seeded events (issue 16): a label and the
/// request's path and query, under the versioned API.
const REPORTS: [(&str, &str); 9] = [
    (
        "funnel, 3 steps, 7-day window",
        "/api/v1/funnel?steps=signed_up,product_viewed,checkout_completed&window=7d",
    ),
    (
        "funnel, 3 steps, by plan",
        "/api/v1/funnel?steps=signed_up,product_viewed,checkout_completed&window=7d&breakdown=plan",
    ),
    (
        "funnel, 2 steps, a property filter",
        "/api/v1/funnel?steps=%5B%7B%22event%22%3A%22product_added%22%2C%22where%22%3A%7B%22plan%22%3A%22pro%22%7D%7D%2C%22checkout_completed%22%5D&window=1d",
    ),
    (
        "retention, daily, 7 periods",
        "/api/v1/retention?start_event=signed_up&return_event=logged_in&period=day&periods=7",
    ),
    (
        "retention, weekly, 4 periods",
        "/api/v1/retention?start_event=signed_up&return_event=logged_in&period=week&periods=4",
    ),
    ("top pages", "/api/v1/top/pages?limit=10"),
    ("top referrers", "/api/v1/top/referrers?limit=10"),
    (
        "breakdown by plan, one event",
        "/api/v1/breakdown?property=plan&event=checkout_completed",
    ),
    (
        "breakdown by plan, every event",
        "/api/v1/breakdown?property=plan",
    ),
];

/// Rows per transaction when seeding the query database.
const SEED_TRANSACTION: u64 = 100_000;
/// Unanswered requests in a row after which an ingest client gives up.
const MAX_CONSECUTIVE_ERRORS: u32 = 10;

/// How the ingest scenario loads the app.
#[derive(Debug, Clone, Copy)]
pub struct IngestOptions {
    /// Concurrent HTTP clients, one keep-alive connection each.
    pub clients: usize,
    /// Events per `POST /v1/batch`.
    pub batch: usize,
    /// Wall-clock bound of each run (trib, then native).
    pub duration: Duration,
    /// Event bound of each run.
    pub max_events: u64,
}

/// Ingest throughput through `trib` and natively.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Ingest {
    /// Concurrent HTTP clients.
    pub clients: usize,
    /// Events per batch (and per transaction natively).
    pub batch_size: usize,
    /// Wall-clock length of the trib run, seconds.
    pub seconds: f64,
    /// Events acknowledged as stored (checked against the database).
    pub events: u64,
    /// `events / seconds`.
    pub events_per_sec: f64,
    /// Median time of one batch request, milliseconds.
    pub batch_p50_ms: f64,
    /// 99th percentile time of one batch request, milliseconds.
    pub batch_p99_ms: f64,
    /// Requests that failed or did not store their whole batch.
    pub errors: u64,
    /// Events the native loop inserted.
    pub native_events: u64,
    /// Native events per second of SQLite time (transactions only).
    pub native_events_per_sec: f64,
    /// `plain_events_per_sec / native_events_per_sec`: the function doing
    /// the same inserts as the native loop.
    pub wasm_over_native: f64,
    /// Native events per second of SQLite time with `synchronous=NORMAL`
    /// (trib keeps `FULL`, so an acknowledged event survives power loss):
    /// the storage headroom.
    pub native_relaxed_events_per_sec: f64,
    /// Events per second through `trib` with every transform slot a
    /// pass-through (ingest without transforms).
    pub plain_events_per_sec: f64,
    /// `events_per_sec / plain_events_per_sec`: what the chain
    /// (redact, enrich, validate) costs.
    pub chain_over_plain: f64,
    /// The native ingest server (`native-ingest`: hyper and rusqlite, the
    /// same parsing, validation and statements, group commit) under the
    /// same load: what a user might run instead of trib.
    #[serde(default)]
    pub server: Option<ServerIngest>,
}

/// One load run against the native ingest server.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServerIngest {
    /// Events acknowledged as stored (checked against its database).
    pub events: u64,
    /// `events / seconds` (wall clock).
    pub events_per_sec: f64,
    /// Median time of one batch request, milliseconds.
    pub batch_p50_ms: f64,
    /// 99th percentile time of one batch request, milliseconds.
    pub batch_p99_ms: f64,
    /// Requests that failed or did not store their whole batch.
    pub errors: u64,
    /// trib through the chain over the server.
    pub chain_over_server: f64,
    /// trib without transforms (what the server does) over the server.
    pub plain_over_server: f64,
}

/// Latency of one request kind, milliseconds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Latency {
    /// Median.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// Slowest.
    pub max_ms: f64,
}

/// One `GET /api/counts` window, through `trib` and natively.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QueryCase {
    /// Which window, e.g. `30 days`.
    pub window: String,
    /// The request path and query.
    pub path: String,
    /// Events in the window.
    pub events: u64,
    /// Hour buckets in the answer.
    pub buckets: u64,
    /// Timed sequential requests (after warm-ups).
    pub requests: usize,
    /// Through `trib` and the query function, one keep-alive connection.
    pub trib: Latency,
    /// The same rollup statements and merge in rusqlite (fresh
    /// connection each, as trib).
    pub native: Latency,
    /// One run of the scan of every event in the window ([`counts_sql`],
    /// what the function ran before rollups; the answer checked against),
    /// milliseconds.
    #[serde(default)]
    pub scan_ms: Option<f64>,
}

/// Query latency over a seeded database.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Query {
    /// Events seeded for source `dev`.
    pub events: u64,
    /// Time to seed them natively, seconds.
    pub seed_seconds: f64,
    /// Size of the database file, MiB.
    pub database_mib: f64,
    /// One entry per window.
    pub cases: Vec<QueryCase>,
}

/// A copy of the data app in a temporary directory: the repository's
/// `spin.toml` beside a `functions` link to the built components, so its
/// `.spin/` (and SQLite database) starts empty.
struct DataApp {
    dir: tempfile::TempDir,
}

impl DataApp {
    fn new(root: &Path) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir().context("cannot create a temporary app directory")?;
        let manifest = root.join("spin.toml");
        std::fs::copy(&manifest, dir.path().join("spin.toml"))
            .with_context(|| format!("cannot copy {}", manifest.display()))?;
        std::os::unix::fs::symlink(root.join("functions"), dir.path().join("functions"))
            .context("cannot link functions/ into the app copy")?;
        Ok(Self { dir })
    }

    /// The app with every transform slot holding a pass-through filter:
    /// ingest without transforms, for the chain's cost.
    fn without_transforms(root: &Path) -> anyhow::Result<Self> {
        let app = Self::new(root)?;
        let manifest = std::fs::read_to_string(app.manifest())?;
        let mut plain = manifest.clone();
        for transform in ["redact", "enrich", "validate"] {
            plain = plain.replace(
                &format!("transform_{transform}.wasm"),
                "transform_filter.wasm",
            );
            plain = plain.replace(&format!("\"{{{{ {transform}_settings }}}}\""), "'{}'");
        }
        if plain.matches("transform_filter.wasm").count() != 4 {
            bail!("spin.toml's ingest chain is not the four slots this benchmark expects");
        }
        std::fs::write(app.manifest(), plain)?;
        Ok(app)
    }

    fn manifest(&self) -> PathBuf {
        self.dir.path().join("spin.toml")
    }

    /// Where `trib` keeps the `default` database (`runtime/src/app.rs`).
    fn database(&self) -> PathBuf {
        self.dir.path().join(".spin/sqlite_db.db")
    }

    /// Starts `trib up` on the copy, with the manifest's default keys.
    fn start(&self, tools: &Tools, cache: &Path) -> anyhow::Result<Server> {
        let addr: SocketAddr = format!("127.0.0.1:{}", peers::free_port()?).parse()?;
        let mut c = Command::new(&tools.trib);
        c.arg("up")
            .arg("-f")
            .arg(self.manifest())
            .arg("--listen")
            .arg(addr.to_string())
            .arg("--cache-dir")
            .arg(cache)
            .current_dir(self.dir.path())
            .env("TRIB_LOG", "warn")
            .env_remove("SPIN_VARIABLE_WRITE_KEYS")
            .env_remove("SPIN_VARIABLE_READ_TOKENS");
        peers::start(c, addr, "/.well-known/spin/health")
            .context("cannot start trib on the data app")
    }
}

/// Ingest throughput: `clients` connections posting batches through
/// `trib`, then the same inserts natively.
pub fn ingest(tools: &Tools, options: IngestOptions) -> anyhow::Result<Ingest> {
    if options.clients == 0 || options.batch == 0 {
        bail!("ingest needs at least one client and one event per batch");
    }
    let cache = tempfile::tempdir()?;
    let max_batches = options.max_events.div_ceil(options.batch as u64).max(1);

    let app = DataApp::new(&tools.root)?;
    let server = app.start(tools, cache.path())?;
    let runtime = runtime()?;
    let auth = basic_auth(WRITE_KEY)?;
    // Loads the component and lets it migrate the database before timing.
    runtime
        .block_on(post_empty_batch(server.addr, &auth))
        .context("ingest warm-up")?;
    // The native run starts from a copy of that schema-only database.
    let native_dir = tempfile::tempdir()?;
    let native_db = native_dir.path().join("native.db");
    copy_database(&app.database(), &native_db)?;
    let native_relaxed_db = native_dir.path().join("native-relaxed.db");
    copy_database(&app.database(), &native_relaxed_db)?;
    let server_db = native_dir.path().join("native-server.db");
    copy_database(&app.database(), &server_db)?;
    let chain = trib_ingest(
        &app.database(),
        &server,
        options,
        max_batches,
        "trib ingest (chain)",
    )?;
    drop(server);
    let plain_app = DataApp::without_transforms(&tools.root)?;
    let plain_server = plain_app.start(tools, cache.path())?;
    runtime
        .block_on(post_empty_batch(plain_server.addr, &auth))
        .context("ingest warm-up (no transforms)")?;
    let plain = trib_ingest(
        &plain_app.database(),
        &plain_server,
        options,
        max_batches,
        "trib ingest (no transforms)",
    )?;
    drop(plain_server);
    let native_server = start_native_ingest(tools, &server_db)?;
    let served = trib_ingest(
        &server_db,
        &native_server,
        options,
        max_batches,
        "native ingest server",
    )?;
    drop(native_server);
    // The server stores what ingest stores without transforms.
    same_rows(&plain_app.database(), &server_db, "ingest-0-0")?;
    let TribIngest {
        events,
        seconds,
        errors,
        latencies,
    } = chain;
    let events_per_sec = events as f64 / seconds;
    let plain_events_per_sec = plain.events as f64 / plain.seconds;
    let server_events_per_sec = served.events as f64 / served.seconds;
    let server = ServerIngest {
        events: served.events,
        events_per_sec: server_events_per_sec,
        batch_p50_ms: percentile(&served.latencies, 0.5),
        batch_p99_ms: percentile(&served.latencies, 0.99),
        errors: served.errors,
        chain_over_server: events_per_sec / server_events_per_sec,
        plain_over_server: plain_events_per_sec / server_events_per_sec,
    };

    let (native_events, native_events_per_sec) =
        native_ingest(&native_db, options, max_batches, false)?;
    // The native loop stores what ingest stores without transforms.
    same_rows(&plain_app.database(), &native_db, "ingest-0-0")?;
    let label = "native ingest";
    eprintln!(
        "{label:>26} {native_events} events: {native_events_per_sec:.0} events/s (SQLite time)"
    );
    let (relaxed_events, native_relaxed_events_per_sec) =
        native_ingest(&native_relaxed_db, options, max_batches, true)?;
    let label = "native ingest (relaxed)";
    eprintln!(
        "{label:>26} {relaxed_events} events: {native_relaxed_events_per_sec:.0} events/s (SQLite time)"
    );
    Ok(Ingest {
        clients: options.clients,
        batch_size: options.batch,
        seconds,
        events,
        events_per_sec,
        batch_p50_ms: percentile(&latencies, 0.5),
        batch_p99_ms: percentile(&latencies, 0.99),
        errors,
        native_events,
        native_events_per_sec,
        wasm_over_native: plain_events_per_sec / native_events_per_sec,
        native_relaxed_events_per_sec,
        plain_events_per_sec,
        chain_over_plain: events_per_sec / plain_events_per_sec,
        server: Some(server),
    })
}

/// Starts the native ingest server (`native-ingest`, built beside
/// `native-hello`) on `database`, with the manifest's default write key.
fn start_native_ingest(tools: &Tools, database: &Path) -> anyhow::Result<Server> {
    let binary = tools.native.with_file_name("native-ingest");
    if !binary.exists() {
        bail!(
            "{} is missing: build it with cargo build -p bench --bin native-ingest",
            binary.display()
        );
    }
    let addr: SocketAddr = format!("127.0.0.1:{}", peers::free_port()?).parse()?;
    let mut c = Command::new(binary);
    c.arg(addr.to_string())
        .arg(database)
        .arg(format!("{WRITE_KEY}={SOURCE}"));
    peers::start(c, addr, "/.well-known/spin/health").context("cannot start native-ingest")
}

/// One timed run of `clients` posting batches to `server`.
struct TribIngest {
    events: u64,
    seconds: f64,
    errors: u64,
    /// Batch latencies, milliseconds, sorted.
    latencies: Vec<f64>,
}

/// Posts batches to `server` for `options.duration`, then checks that its
/// `database` holds every acknowledged event.
fn trib_ingest(
    database: &Path,
    server: &Server,
    options: IngestOptions,
    max_batches: u64,
    label: &str,
) -> anyhow::Result<TribIngest> {
    let runtime = runtime()?;
    let auth = basic_auth(WRITE_KEY)?;
    let started = Instant::now();
    let deadline = started + options.duration;
    let next = Arc::new(AtomicU64::new(0));
    let stats = runtime.block_on(async {
        let mut tasks = Vec::new();
        for _ in 0..options.clients {
            tasks.push(tokio::spawn(ingest_client(
                server.addr,
                auth.clone(),
                next.clone(),
                max_batches,
                options.batch,
                deadline,
            )));
        }
        let mut all = Vec::new();
        for task in tasks {
            all.push(task.await.context("an ingest client panicked")??);
        }
        anyhow::Ok(all)
    })?;
    let seconds = started.elapsed().as_secs_f64();

    let events: u64 = stats.iter().map(|s| s.events).sum();
    let errors: u64 = stats.iter().map(|s| s.errors).sum();
    if let Some(first) = stats.iter().find_map(|s| s.first_error.as_deref()) {
        eprintln!("ingest: {errors} failed requests; the first: {first}");
    }
    if events == 0 {
        bail!("ingest stored no events");
    }
    let stored = count_events(database)?;
    if stored != events {
        bail!(
            "{label} acknowledged {events} events but its database holds {stored} for source {SOURCE} ({errors} requests failed)"
        );
    }
    let mut latencies: Vec<f64> = stats
        .iter()
        .flat_map(|s| s.latencies_ms.iter().copied())
        .collect();
    latencies.sort_by(f64::total_cmp);
    let events_per_sec = events as f64 / seconds;
    eprintln!(
        "{label:>26} {events} events in {seconds:.1} s: {events_per_sec:.0} events/s, batch p50 {:.1} ms p99 {:.1} ms, errors {errors}",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
    );

    Ok(TribIngest {
        events,
        seconds,
        errors,
        latencies,
    })
}

/// What one ingest client saw.
#[derive(Default)]
struct ClientStats {
    events: u64,
    latencies_ms: Vec<f64>,
    errors: u64,
    first_error: Option<String>,
}

async fn ingest_client(
    addr: SocketAddr,
    auth: HeaderValue,
    next: Arc<AtomicU64>,
    max_batches: u64,
    batch: usize,
    deadline: Instant,
) -> anyhow::Result<ClientStats> {
    let mut client = Client::new(addr)?;
    let mut stats = ClientStats::default();
    let mut consecutive_errors = 0;
    loop {
        let number = next.fetch_add(1, Ordering::Relaxed);
        if number >= max_batches || Instant::now() >= deadline {
            break;
        }
        let messages: Vec<Value> = batch_events(number, batch)
            .iter()
            .map(Event::message)
            .collect();
        let body = Bytes::from(serde_json::to_vec(&json!({ "batch": messages }))?);
        let started = Instant::now();
        let answer = client.send(Method::POST, "/v1/batch", &auth, body).await;
        let elapsed = started.elapsed();
        match answer.and_then(|(status, body)| stored_count(status, &body, batch)) {
            Ok(stored) => {
                stats.events += stored;
                stats.latencies_ms.push(elapsed.as_secs_f64() * 1e3);
                consecutive_errors = 0;
            }
            Err(e) => {
                stats.errors += 1;
                stats.first_error.get_or_insert_with(|| format!("{e:#}"));
                consecutive_errors += 1;
                if consecutive_errors >= MAX_CONSECUTIVE_ERRORS {
                    break;
                }
            }
        }
    }
    Ok(stats)
}

/// The events of batch `number`: distinct message ids, random names and
/// users, and times as live traffic has them: in arrival order, 10 ms
/// apart, each up to 5 s early (client clocks and batching). Times spread
/// at random over a month (a backfill) cost SQLite about 3× more per
/// event, in index page splits; the query benchmark seeds that case.
fn batch_events(number: u64, batch: usize) -> Vec<Event> {
    (0..batch as u64)
        .map(|i| {
            let n = number * batch as u64 + i;
            let jitter = (mix(n ^ 0x5eed) % 5_000) as i64;
            let timestamp_ms = LIVE_START_MS + n as i64 * 10 - jitter;
            Event::new(format!("ingest-{number}-{i}"), n, timestamp_ms)
        })
        .collect()
}

/// The `stored` count of a `200` answer, which must be the whole batch.
fn stored_count(status: u16, body: &[u8], batch: usize) -> anyhow::Result<u64> {
    let text = || {
        String::from_utf8_lossy(body)
            .chars()
            .take(300)
            .collect::<String>()
    };
    if status != 200 {
        bail!("status {status}: {}", text());
    }
    let json: Value = serde_json::from_slice(body)
        .with_context(|| format!("the answer is not JSON: {}", text()))?;
    let stored = json
        .get("stored")
        .and_then(Value::as_u64)
        .with_context(|| format!("no stored count in {}", text()))?;
    if stored != batch as u64 {
        bail!("stored {stored} of {batch} events: {}", text());
    }
    Ok(stored)
}

async fn post_empty_batch(addr: SocketAddr, auth: &HeaderValue) -> anyhow::Result<()> {
    let mut client = Client::new(addr)?;
    let (status, body) = client
        .send(
            Method::POST,
            "/v1/batch",
            auth,
            Bytes::from_static(br#"{"batch":[]}"#),
        )
        .await?;
    if status != 200 {
        bail!(
            "POST /v1/batch (empty): {status} {}",
            String::from_utf8_lossy(&body)
        );
    }
    Ok(())
}

/// The native baseline: the function's one insert per batch, one
/// `BEGIN IMMEDIATE` transaction per batch, one connection with trib's
/// settings (WAL, `synchronous=FULL`, busy timeout), or with
/// `synchronous=NORMAL` when `relaxed`. Returns the events inserted and events
/// per second of time spent in the transactions.
fn native_ingest(
    path: &Path,
    options: IngestOptions,
    max_batches: u64,
    relaxed: bool,
) -> anyhow::Result<(u64, f64)> {
    let mut conn = open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    if relaxed {
        conn.pragma_update(None, "synchronous", "NORMAL")?;
    }
    let received_ms = now_ms();
    let wall = Instant::now();
    let mut in_sqlite = Duration::ZERO;
    let mut events = 0u64;
    for number in 0..max_batches {
        if wall.elapsed() >= options.duration {
            break;
        }
        let rows: Vec<(Event, String, String)> = batch_events(number, options.batch)
            .into_iter()
            .map(|e| {
                let raw = e.message().to_string();
                let properties = e.properties.to_string();
                (e, raw, properties)
            })
            .collect();
        let started = Instant::now();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        {
            let mut insert = tx.prepare_cached(&insert_events(rows.len()))?;
            let mut values: Vec<rusqlite::types::Value> =
                Vec::with_capacity(rows.len() * EVENT_COLUMNS);
            for (e, raw, properties) in &rows {
                values.extend([
                    SOURCE.to_owned().into(),
                    e.message_id.clone().into(),
                    "track".to_owned().into(),
                    e.name.to_owned().into(),
                    e.user_id.clone().into(),
                    rusqlite::types::Value::Null,
                    e.timestamp_ms.into(),
                    received_ms.into(),
                    properties.clone().into(),
                    raw.clone().into(),
                ]);
            }
            events += insert.execute(rusqlite::params_from_iter(values))? as u64;
        }
        tx.commit()?;
        in_sqlite += started.elapsed();
    }
    if events == 0 {
        bail!("the native ingest loop inserted nothing");
    }
    Ok((events, events as f64 / in_sqlite.as_secs_f64()))
}

/// Query latency for each size in `sizes` (a fresh database each): see
/// [`query`]. Cases of every size but the first name their size, so the
/// table shows the cost growing with buckets, not events.
pub fn queries(tools: &Tools, sizes: &[u64], requests: usize) -> anyhow::Result<Query> {
    let mut all: Option<Query> = None;
    for (i, &events) in sizes.iter().enumerate() {
        let mut q = query(tools, events, requests)?;
        if i > 0 {
            for case in &mut q.cases {
                case.window = format!("{}, {events} events seeded", case.window);
            }
        }
        match &mut all {
            None => all = Some(q),
            Some(all) => all.cases.extend(q.cases),
        }
    }
    all.context("no query sizes")
}

/// Query latency: seeds `events` events natively (rollups too, with the
/// functions' code), then times `GET /api/counts?bucket=hour` over 30 days
/// and over the last day through `trib`, and the same rollup statements
/// natively; checks trib's answer against a scan of the events (counts
/// exactly, unique users within the sketch's error).
fn query(tools: &Tools, events: u64, requests: usize) -> anyhow::Result<Query> {
    if events == 0 || requests == 0 {
        bail!("query needs at least one event and one request");
    }
    let cache = tempfile::tempdir()?;
    let app = DataApp::new(&tools.root)?;
    let database = app.database();
    {
        // The ingest function creates the schema and its migration rows.
        let server = app.start(tools, cache.path())?;
        runtime()?
            .block_on(post_empty_batch(server.addr, &basic_auth(WRITE_KEY)?))
            .context("the ingest function did not create its schema")?;
    }
    if count_events(&database)? != 0 {
        bail!("{} is not empty", database.display());
    }
    let started = Instant::now();
    seed(&database, events)?;
    let seed_seconds = started.elapsed().as_secs_f64();
    let database_mib = std::fs::metadata(&database)?.len() as f64 / (1024.0 * 1024.0);
    eprintln!("seeded {events} events in {seed_seconds:.1} s ({database_mib:.0} MiB)");

    let end = START_MS + DAYS * DAY_MS;
    let windows = [
        (format!("{DAYS} days (every event)"), START_MS, end),
        ("last 24 hours".to_owned(), end - DAY_MS, end),
    ];
    let server = app.start(tools, cache.path())?;
    let runtime = runtime()?;
    let auth = HeaderValue::from_str(&format!("Bearer {READ_TOKEN}"))?;
    let mut through_trib = Vec::new();
    for (_, from, to) in &windows {
        let path = format!("/api/counts?bucket=hour&from={from}&to={to}");
        let measured = runtime
            .block_on(time_counts(server.addr, &auth, &path, requests))
            .with_context(|| format!("GET {path}"))?;
        through_trib.push((path, measured));
    }
    let mut reports = Vec::new();
    for (label, path) in REPORTS {
        let (latency, rows) = runtime
            .block_on(time_report(server.addr, &auth, path, requests))
            .with_context(|| format!("GET {path}"))?;
        reports.push((label, path, latency, rows));
    }
    drop(server);

    let mut cases = Vec::new();
    for ((window, from, to), (path, (trib, answer))) in windows.into_iter().zip(through_trib) {
        let (native, native_answer) = time_native_counts(&database, from, to, requests)?;
        if native_answer != answer {
            bail!("{path}: trib and the same rollup statements natively answered differently");
        }
        let started = Instant::now();
        let scanned = scan_counts(&database, from, to)?;
        let scan_ms = started.elapsed().as_secs_f64() * 1e3;
        check_answer(&path, &answer, &scanned)?;
        let label = "query counts";
        eprintln!(
            "{label:>26} {window} ({events} seeded): trib p50 {:.1} ms p90 {:.1} ms max {:.1} ms; native p50 {:.1} ms; scan {scan_ms:.0} ms",
            trib.p50_ms, trib.p90_ms, trib.max_ms, native.p50_ms
        );
        cases.push(QueryCase {
            window,
            path,
            events: answer.iter().map(|b| b.1).sum(),
            buckets: answer.len() as u64,
            requests,
            trib,
            native,
            scan_ms: Some(scan_ms),
        });
    }
    for (label, path, trib, rows) in reports {
        let native = time_native_report(&database, path, requests)?;
        eprintln!(
            "{label:>34} ({events} seeded): trib p50 {:.1} ms p90 {:.1} ms max {:.1} ms; native p50 {:.1} ms; {rows} rows",
            trib.p50_ms, trib.p90_ms, trib.max_ms, native.p50_ms
        );
        cases.push(QueryCase {
            window: label.to_owned(),
            path: path.to_owned(),
            events,
            buckets: rows,
            requests,
            trib,
            native,
            scan_ms: None,
        });
    }
    Ok(Query {
        events,
        seed_seconds,
        database_mib,
        cases,
    })
}

/// Warm-ups before each timed series.
const WARMUPS: usize = 2;

/// Times `requests` sequential `GET path` after the warm-ups; returns the
/// latency and the answer's buckets.
async fn time_counts(
    addr: SocketAddr,
    auth: &HeaderValue,
    path: &str,
    requests: usize,
) -> anyhow::Result<(Latency, Vec<AnswerBucket>)> {
    let mut client = Client::new(addr)?;
    let mut times = Vec::with_capacity(requests);
    let mut answer = Vec::new();
    for i in 0..WARMUPS + requests {
        let started = Instant::now();
        let (status, body) = client.send(Method::GET, path, auth, Bytes::new()).await?;
        let elapsed = started.elapsed();
        if status != 200 {
            bail!("status {status}: {}", String::from_utf8_lossy(&body));
        }
        if i >= WARMUPS {
            times.push(elapsed.as_secs_f64() * 1e3);
        }
        if i + 1 == WARMUPS + requests {
            answer = counts_answer(&body)?;
        }
    }
    Ok((latency(times), answer))
}

/// Times `requests` sequential `GET path` of a report after the
/// warm-ups; returns the latency and the rows of the last answer (funnel
/// steps, retention cohorts, breakdown rows), which must not all be empty:
/// a report over nothing would time nothing.
async fn time_report(
    addr: SocketAddr,
    auth: &HeaderValue,
    path: &str,
    requests: usize,
) -> anyhow::Result<(Latency, u64)> {
    let mut client = Client::new(addr)?;
    let mut times = Vec::with_capacity(requests);
    let mut rows = 0;
    for i in 0..WARMUPS + requests {
        let started = Instant::now();
        let (status, body) = client.send(Method::GET, path, auth, Bytes::new()).await?;
        let elapsed = started.elapsed();
        if status != 200 {
            bail!("status {status}: {}", String::from_utf8_lossy(&body));
        }
        if i >= WARMUPS {
            times.push(elapsed.as_secs_f64() * 1e3);
        }
        if i + 1 == WARMUPS + requests {
            let json: Value = serde_json::from_slice(&body).context("the answer is not JSON")?;
            let list = ["steps", "cohorts", "rows"]
                .into_iter()
                .find_map(|key| json.get(key).and_then(Value::as_array))
                .context("the answer has no steps, cohorts or rows")?;
            let first = &list.first().context("an empty answer")?;
            let reached = ["users", "events"]
                .into_iter()
                .find_map(|key| first.get(key).and_then(Value::as_i64));
            if reached == Some(0) {
                bail!("the answer counts nothing: {json}");
            }
            rows = list.len() as u64;
        }
    }
    Ok((latency(times), rows))
}

/// The statements a report path runs (the query function's own, from
/// `event_store::reports`), for SQLite and source `dev`.
fn report_statements(path: &str) -> anyhow::Result<Vec<(String, Vec<Param>)>> {
    use event_store::reports::{Breakdown, Dialect, Funnel, Period, Retention, Step};
    let (route, query) = path.split_once('?').unwrap_or((path, ""));
    let q: std::collections::HashMap<String, String> = url_pairs(query);
    let get = |k: &str| q.get(k).cloned();
    let names = |k: &str| -> Vec<String> {
        get(k)
            .unwrap_or_default()
            .split('.')
            .map(str::to_owned)
            .collect()
    };
    let statement = match route {
        "/api/v1/funnel" => {
            let steps_text = get("steps").context("steps")?;
            let steps: Vec<Step> = if steps_text.starts_with('[') {
                let items: Vec<Value> = serde_json::from_str(&steps_text)?;
                items
                    .iter()
                    .map(|item| match item {
                        Value::String(name) => Step {
                            event: name.clone(),
                            filters: vec![],
                        },
                        other => Step {
                            event: other["event"].as_str().unwrap_or_default().to_owned(),
                            filters: other["where"]
                                .as_object()
                                .into_iter()
                                .flatten()
                                .map(|(path, v)| event_store::reports::PropertyFilter {
                                    path: path.split('.').map(str::to_owned).collect(),
                                    json: v.to_string(),
                                })
                                .collect(),
                        },
                    })
                    .collect()
            } else {
                steps_text
                    .split(',')
                    .map(|name| Step {
                        event: name.to_owned(),
                        filters: vec![],
                    })
                    .collect()
            };
            let window = match get("window").as_deref() {
                Some("1d") => DAY_MS,
                _ => 7 * DAY_MS,
            };
            let breakdown = get("breakdown").map(|_| names("breakdown"));
            vec![
                Funnel::new(steps, window, 0, i64::MAX, breakdown)?
                    .statement(Dialect::Sqlite, SOURCE),
            ]
        }
        "/api/v1/retention" => {
            let period = if get("period").as_deref() == Some("week") {
                Period::Week
            } else {
                Period::Day
            };
            let periods = get("periods").context("periods")?.parse()?;
            Retention::new(
                get("start_event").context("start_event")?,
                get("return_event").context("return_event")?,
                period,
                periods,
                0,
                i64::MAX,
            )?
            .statements(Dialect::Sqlite, SOURCE)
            .to_vec()
        }
        "/api/v1/top/pages" | "/api/v1/top/referrers" => {
            let property = if route.ends_with("pages") {
                "path"
            } else {
                "referrer"
            };
            vec![
                Breakdown::new(
                    vec![property.to_owned()],
                    Some("page".to_owned()),
                    None,
                    0,
                    i64::MAX,
                    10,
                )?
                .statement(Dialect::Sqlite, SOURCE),
            ]
        }
        "/api/v1/breakdown" => {
            vec![
                Breakdown::new(names("property"), None, get("event"), 0, i64::MAX, 10)?
                    .statement(Dialect::Sqlite, SOURCE),
            ]
        }
        other => bail!("no native statement for {other}"),
    };
    Ok(statement)
}

/// A query string's pairs, decoded.
fn url_pairs(query: &str) -> std::collections::HashMap<String, String> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| {
            let v = percent_decode(v);
            (k.to_owned(), v)
        })
        .collect()
}

/// `%XX` escapes decoded (the benchmark's own paths: ASCII escapes only).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(b) = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Runs a report's statement natively the way the query function does
/// (fresh connection, every row collected).
fn time_native_report(database: &Path, path: &str, requests: usize) -> anyhow::Result<Latency> {
    let statements = report_statements(path)?;
    let mut times = Vec::with_capacity(requests);
    for i in 0..WARMUPS + requests {
        let started = Instant::now();
        let conn = open(database)?;
        let mut all: Vec<Vec<rusqlite::types::Value>> = Vec::new();
        for (sql, params) in &statements {
            let mut stmt = conn.prepare(sql)?;
            let width = stmt.column_count();
            let mut rows = stmt.query(rusqlite::params_from_iter(
                params.iter().cloned().map(sql_value),
            ))?;
            while let Some(row) = rows.next()? {
                all.push((0..width).map(|c| row.get(c)).collect::<Result<_, _>>()?);
            }
        }
        if all.is_empty() {
            bail!("{path}: the native statement found nothing");
        }
        if i >= WARMUPS {
            times.push(started.elapsed().as_secs_f64() * 1e3);
        }
    }
    Ok(latency(times))
}

/// One bucket of a counts answer: start, events, unique users.
type AnswerBucket = (i64, u64, u64);

/// The buckets of a `/api/counts` answer.
fn counts_answer(body: &[u8]) -> anyhow::Result<Vec<AnswerBucket>> {
    let json: Value = serde_json::from_slice(body).context("the answer is not JSON")?;
    let buckets = json
        .get("buckets")
        .and_then(Value::as_array)
        .context("the answer has no buckets array")?;
    buckets
        .iter()
        .map(|bucket| {
            let field = |name: &str| bucket.get(name).context("a bucket without {name}");
            Ok((
                field("start")?.as_i64().context("start is not a number")?,
                field("count")?.as_u64().context("count is not a count")?,
                field("unique_users")?
                    .as_u64()
                    .context("unique_users is not a count")?,
            ))
        })
        .collect()
}

/// Fails unless `answer` is the scan's: the same buckets with the same
/// counts, and unique users exact up to the sketch's exact limit and
/// within 5 standard errors past it.
fn check_answer(
    path: &str,
    answer: &[AnswerBucket],
    scanned: &[AnswerBucket],
) -> anyhow::Result<()> {
    if answer.len() != scanned.len() {
        bail!(
            "{path}: trib answered {} buckets, the scan {}",
            answer.len(),
            scanned.len()
        );
    }
    for (&(start, count, users), &(s_start, s_count, s_users)) in answer.iter().zip(scanned) {
        if (start, count) != (s_start, s_count) {
            bail!(
                "{path}: trib's bucket {start} has {count} events, the scan's {s_start} {s_count}"
            );
        }
        let error = (users as f64 - s_users as f64).abs() / (s_users.max(1) as f64);
        let exact = s_users as usize <= SPARSE_LIMIT;
        if (exact && users != s_users) || error > 5.0 * STANDARD_ERROR {
            bail!(
                "{path}: bucket {start}: {users} unique users from rollups, {s_users} by the scan"
            );
        }
    }
    Ok(())
}

/// The scan of every event in the window ([`counts_sql`], hour buckets).
fn scan_counts(database: &Path, from: i64, to: i64) -> anyhow::Result<Vec<AnswerBucket>> {
    let conn = open(database)?;
    let mut stmt = conn.prepare(&counts_sql())?;
    let rows = stmt
        .query_map(params![SOURCE, HOUR_MS, from, to], |row| {
            Ok((row.get(0)?, row.get(2)?, row.get(3)?))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// A statement parameter as rusqlite binds it.
fn sql_value(p: Param) -> rusqlite::types::Value {
    use rusqlite::types::Value as V;
    match p {
        Param::Int(i) => V::Integer(i),
        Param::Real(f) => V::Real(f),
        Param::Text(s) => V::Text(s),
        Param::Blob(b) => V::Blob(b),
        Param::Null => V::Null,
    }
}

/// The query function's rollup path natively (the same plan, statements
/// and merge, from `event_store::rollup`): hour buckets over the window.
fn native_counts(conn: &Connection, from: i64, to: i64) -> anyhow::Result<Vec<AnswerBucket>> {
    let plan = rollup::plan(HOUR_MS, from, to).context("rollups cannot answer the window")?;
    let mut counts = rollup::Counts::new(HOUR_MS, Selection::All);
    if !plan.rollups.is_empty() {
        let (sql, params) = rollup::select_rollups(&plan, SOURCE, &Selection::All);
        let mut stmt = conn.prepare(&sql)?;
        let mut rows = stmt.query(rusqlite::params_from_iter(
            params.into_iter().map(sql_value),
        ))?;
        while let Some(row) = rows.next()? {
            counts
                .add_rollup(
                    row.get(0)?,
                    row.get(1)?,
                    row.get(2)?,
                    row.get(3)?,
                    row.get_ref(4)?.as_blob()?,
                )
                .map_err(anyhow::Error::msg)?;
        }
    }
    if !plan.raw.is_empty() {
        let (sql, params) = rollup::select_raw(&plan, SOURCE, &Selection::All);
        let mut stmt = conn.prepare(&sql)?;
        let mut rows = stmt.query(rusqlite::params_from_iter(
            params.into_iter().map(sql_value),
        ))?;
        while let Some(row) = rows.next()? {
            let user: Option<String> = row.get(2)?;
            counts.add_event(row.get(0)?, row.get(1)?, user.as_deref());
        }
    }
    Ok(counts
        .buckets()
        .into_iter()
        .map(|b| (b.start, b.count as u64, b.unique_users))
        .collect())
}

/// Runs [`native_counts`] the way the query function does (fresh
/// connection, every row collected); returns the latency and the last
/// run's answer.
fn time_native_counts(
    database: &Path,
    from: i64,
    to: i64,
    requests: usize,
) -> anyhow::Result<(Latency, Vec<AnswerBucket>)> {
    let mut times = Vec::with_capacity(requests);
    let mut answer = Vec::new();
    for i in 0..WARMUPS + requests {
        let started = Instant::now();
        let conn = open(database)?;
        answer = native_counts(&conn, from, to)?;
        if i >= WARMUPS {
            times.push(started.elapsed().as_secs_f64() * 1e3);
        }
    }
    Ok((latency(times), answer))
}

/// The ingest function's rollup write (`Db::add_rollups` on SQLite)
/// natively, with the same statements: reads the rows' sketches, merges,
/// writes counts and sketches.
fn add_rollups(conn: &Connection, rollups: &mut Rollups) -> anyhow::Result<()> {
    let mut stored = Vec::new();
    for keys in rollups.key_chunks() {
        let (sql, params) = rollup::select_stored(&keys);
        let mut stmt = conn.prepare_cached(&sql)?;
        let mut rows = stmt.query(rusqlite::params_from_iter(
            params.into_iter().map(sql_value),
        ))?;
        while let Some(row) = rows.next()? {
            stored.push(
                rollup::stored_row(
                    row.get(0)?,
                    row.get(1)?,
                    row.get(2)?,
                    row.get(3)?,
                    row.get(4)?,
                    row.get_ref(5)?.as_blob()?,
                )
                .map_err(anyhow::Error::msg)?,
            );
        }
    }
    for (key, sketch) in &stored {
        rollups.merge_stored(key, sketch);
    }
    for rows in rollups.row_chunks() {
        let (sql, params) = rollup::upsert(&rows);
        conn.prepare_cached(&sql)?
            .execute(rusqlite::params_from_iter(
                params.into_iter().map(sql_value),
            ))?;
    }
    Ok(())
}

/// Seeds `events` events for source `dev` over [`DAYS`] days in time order,
/// in large transactions, into a database the function has migrated; each
/// transaction adds its new events to the rollups as ingest does.
fn seed(path: &Path, events: u64) -> anyhow::Result<()> {
    let mut conn = open(path)?;
    // Only the seeding connection: trib's own connections keep the defaults.
    conn.pragma_update(None, "synchronous", "OFF")?;
    let span = (DAYS * DAY_MS) as u128;
    let mut n = 0;
    while n < events {
        let tx = conn.transaction()?;
        let mut rollups = Rollups::new();
        {
            let mut insert = tx.prepare_cached(&insert_events(1))?;
            for i in n..(n + SEED_TRANSACTION).min(events) {
                let offset = (i as u128 * span / events as u128) as i64 + (mix(i) % 60_000) as i64;
                let timestamp_ms = START_MS + offset.min(DAYS * DAY_MS - 1);
                let mut e = Event::new(format!("seed-{i}"), i, timestamp_ms);
                // `page_viewed` events are page views (for the top pages
                // and referrers reports), with a path and a referrer.
                let kind = if e.name == PAGE_EVENT {
                    let r = mix(i ^ 0x5eed);
                    e.properties["path"] = json!(format!("/page-{}", r % 40));
                    e.properties["referrer"] = json!(REFERRERS[((r >> 8) % 4) as usize]);
                    "page"
                } else {
                    "track"
                };
                let new = insert.execute(params![
                    SOURCE,
                    e.message_id,
                    kind,
                    e.name,
                    e.user_id,
                    Option::<&str>::None,
                    e.timestamp_ms,
                    e.timestamp_ms + 1_000,
                    e.properties.to_string(),
                    raw_message(&e, kind).to_string()
                ])?;
                if new == 1 {
                    rollups.add(SOURCE, Some(e.name), Some(&e.user_id), e.timestamp_ms);
                }
            }
        }
        add_rollups(&tx, &mut rollups)?;
        tx.commit()
            .with_context(|| format!("seeding {}", path.display()))?;
        n += SEED_TRANSACTION;
    }
    Ok(())
}

/// The message a seeded event stands for: a page view's as a `page` call.
fn raw_message(e: &Event, kind: &str) -> Value {
    let mut m = e.message();
    if kind == "page" {
        m["type"] = json!("page");
        m["name"] = json!(e.name);
        if let Some(fields) = m.as_object_mut() {
            fields.remove("event");
        }
    }
    m
}

/// Copies the SQLite database at `from` (consistent even while trib has
/// it open) to the new file `to`.
fn copy_database(from: &Path, to: &Path) -> anyhow::Result<()> {
    let target = to.to_str().context("temporary path is not UTF-8")?;
    open(from)?
        .execute("VACUUM INTO ?1", [target])
        .with_context(|| format!("cannot copy {} to {}", from.display(), to.display()))?;
    Ok(())
}

/// Warns unless the row of `message_id` is the same (but for `id` and
/// `received_at_ms`) in trib's database and the native one, i.e. the native
/// loop stores what the function stores.
fn same_rows(trib: &Path, native: &Path, message_id: &str) -> anyhow::Result<()> {
    const COLUMNS: [&str; 9] = [
        "source",
        "message_id",
        "type",
        "name",
        "user_id",
        "anonymous_id",
        "timestamp_ms",
        "properties",
        "raw",
    ];
    let row = |path: &Path| -> anyhow::Result<Vec<rusqlite::types::Value>> {
        let sql = format!(
            "SELECT {} FROM events WHERE source = ?1 AND message_id = ?2",
            COLUMNS.join(", ")
        );
        open(path)?
            .query_row(&sql, [SOURCE, message_id], |r| {
                (0..COLUMNS.len()).map(|i| r.get(i)).collect()
            })
            .with_context(|| format!("{message_id} in {}", path.display()))
    };
    let (a, b) = (row(trib)?, row(native)?);
    for ((column, x), y) in COLUMNS.iter().zip(&a).zip(&b) {
        if x != y {
            eprintln!(
                "warning: native and trib stored {message_id}'s {column} differently: {y:?} vs {x:?}"
            );
        }
    }
    Ok(())
}

/// A connection as trib opens one (`runtime/src/spin_apis/sqlite.rs`).
fn open(path: &Path) -> anyhow::Result<Connection> {
    let conn = Connection::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    conn.busy_timeout(Duration::from_secs(5))?;
    Ok(conn)
}

fn count_events(database: &Path) -> anyhow::Result<u64> {
    let n: i64 = open(database)?.query_row(
        "SELECT count(*) FROM events WHERE source = ?1",
        [SOURCE],
        |row| row.get(0),
    )?;
    u64::try_from(n).context("negative count")
}

/// One generated `track` event.
struct Event {
    message_id: String,
    name: &'static str,
    user_id: String,
    timestamp_ms: i64,
    properties: Value,
}

impl Event {
    /// Event `n` (names, users and properties drawn from `n`).
    fn new(message_id: String, n: u64, timestamp_ms: i64) -> Self {
        let r = mix(n);
        Self {
            message_id,
            name: EVENT_NAMES[(r % EVENT_NAMES.len() as u64) as usize],
            user_id: format!("user-{}", (r >> 16) % USERS),
            timestamp_ms,
            properties: json!({
                "plan": PLANS[((r >> 32) % PLANS.len() as u64) as usize],
                "value": (r >> 40) % 1000,
            }),
        }
    }

    /// The Segment message as a client sends it.
    fn message(&self) -> Value {
        json!({
            "type": "track",
            "event": self.name,
            "userId": self.user_id,
            "messageId": self.message_id,
            "properties": self.properties,
            "timestamp": iso_time(self.timestamp_ms),
        })
    }
}

/// RFC 3339 for a time in January 2026 (every generated time is).
fn iso_time(ms: i64) -> String {
    let t = (ms - START_MS).clamp(0, DAYS * DAY_MS - 1);
    format!(
        "2026-01-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t / DAY_MS + 1,
        t % DAY_MS / HOUR_MS,
        t % HOUR_MS / 60_000,
        t % 60_000 / 1_000,
        t % 1_000
    )
}

/// SplitMix64: a deterministic spread of `n`.
fn mix(n: u64) -> u64 {
    let mut z = n.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn basic_auth(user: &str) -> anyhow::Result<HeaderValue> {
    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:"));
    Ok(HeaderValue::from_str(&format!("Basic {encoded}"))?)
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the client runtime")
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn latency(mut times: Vec<f64>) -> Latency {
    times.sort_by(f64::total_cmp);
    Latency {
        p50_ms: percentile(&times, 0.5),
        p90_ms: percentile(&times, 0.9),
        max_ms: times.last().copied().unwrap_or(0.0),
    }
}

/// The `q` quantile of sorted `values` (nearest rank; 0 when empty).
fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = (q * (sorted.len() - 1) as f64).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_times_round_trip_the_generated_range() {
        assert_eq!(iso_time(START_MS), "2026-01-01T00:00:00.000Z");
        let t = START_MS + 29 * DAY_MS + 23 * HOUR_MS + 59 * 60_000 + 58_765;
        assert_eq!(iso_time(t), "2026-01-30T23:59:58.765Z");
    }

    #[test]
    fn batches_have_distinct_message_ids() {
        let mut ids: Vec<String> = (0..3)
            .flat_map(|b| batch_events(b, 100))
            .map(|e| e.message_id)
            .collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 300);
    }

    #[test]
    fn counts_answers_are_read_and_checked() {
        let body = br#"{"bucket_ms":3600000,"buckets":[{"start":0,"group":null,"count":3,"unique_users":2},{"start":3600000,"group":null,"count":4,"unique_users":1}]}"#;
        let answer = counts_answer(body).expect("an answer");
        assert_eq!(answer, vec![(0, 3, 2), (HOUR_MS, 4, 1)]);
        assert!(counts_answer(b"{}").is_err());
        assert!(check_answer("p", &answer, &answer).is_ok());
        assert!(check_answer("p", &answer, &[(0, 3, 2), (HOUR_MS, 5, 1)]).is_err());
        assert!(check_answer("p", &answer, &[(0, 3, 1), (HOUR_MS, 4, 1)]).is_err());
        assert!(check_answer("p", &[(0, 1000, 1010)], &[(0, 1000, 1000)]).is_ok());
        assert!(check_answer("p", &[(0, 1000, 1100)], &[(0, 1000, 1000)]).is_err());
    }

    #[test]
    fn seeded_events_are_counted_natively() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let db = dir.path().join("events.db");
        // The event store's own schema, as the ingest function migrates it.
        let conn = open(&db)?;
        for version in event_store::migrations::VERSIONS {
            for statement in event_store::migrations::statements(version, true) {
                conn.execute_batch(&statement)?;
            }
        }
        drop(conn);
        seed(&db, 1_000)?;
        assert_eq!(count_events(&db)?, 1_000);
        let (from, to) = (START_MS, START_MS + DAYS * DAY_MS);
        let (_, answer) = time_native_counts(&db, from, to, 1)?;
        assert_eq!(answer.iter().map(|r| r.1).sum::<u64>(), 1_000);
        assert_eq!(answer.len(), (DAYS * 24) as usize);
        // The rollups the seeding filled answer as the scan does, for the
        // whole month and for a window cut inside minutes.
        check_answer("month", &answer, &scan_counts(&db, from, to)?)?;
        let (from, to) = (START_MS + 90_001, START_MS + 5 * DAY_MS - 61_001);
        let cut = native_counts(&open(&db)?, from, to)?;
        check_answer("cut", &cut, &scan_counts(&db, from, to)?)?;
        let copy = dir.path().join("copy.db");
        copy_database(&db, &copy)?;
        assert_eq!(count_events(&copy)?, 1_000);
        Ok(())
    }
}
