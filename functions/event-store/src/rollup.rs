//! Rollups: per source, bucket and event name, the exact number of events
//! and a [`Sketch`] of their unique users, at minute, hour and day grain
//! (table `rollups`, schema version 3). Ingest maintains them in the
//! transaction that stores the events, from the rows that insert reported
//! as new (so a resent batch changes nothing); `GET /api/counts` answers
//! from them, reading one row per bucket (and group) instead of every
//! event, and reads raw events only for the sub-minute edges of an
//! unaligned window.
//!
//! Each bucket has a row per event name (scope [`SCOPE_NAMED`]), one for
//! events without a name ([`SCOPE_UNNAMED`]) and one for all of its events
//! ([`SCOPE_ALL`]), so an ungrouped count reads one row per bucket.
//! Events before 1970 (negative times) are left out of rollups; the query
//! reads windows that reach them from raw events.
//!
//! Plain Rust with no Spin dependency: the ingest and query functions and
//! the native benchmark share the statements and the arithmetic.

use std::collections::BTreeMap;

use crate::Param;
use crate::hll::Sketch;

/// A minute, in milliseconds.
pub const MINUTE_MS: i64 = 60_000;
/// An hour, in milliseconds.
pub const HOUR_MS: i64 = 3_600_000;
/// A day, in milliseconds.
pub const DAY_MS: i64 = 86_400_000;
/// The rollup grains, finest first; each divides the next.
pub const GRAINS: [i64; 3] = [MINUTE_MS, HOUR_MS, DAY_MS];

/// The row of every event of a bucket.
pub const SCOPE_ALL: i64 = 0;
/// The row of a bucket's events without a name (identify, group, alias,
/// unnamed page and screen).
pub const SCOPE_UNNAMED: i64 = 1;
/// The row of a bucket's events with one name (in `name`).
pub const SCOPE_NAMED: i64 = 2;

/// Rollup rows per statement: 500 rows of 7 parameters stay well under
/// both SQLite's and PostgreSQL's parameter limits.
pub const ROWS_PER_STATEMENT: usize = 500;

/// A rollup row's key, ordered as the table's primary key (writes lock
/// rows in this order, so two writers never deadlock).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key {
    /// The events' source.
    pub source: String,
    /// The grain, ms (one of [`GRAINS`]).
    pub width_ms: i64,
    /// The bucket's start, ms since the epoch.
    pub bucket_ms: i64,
    /// [`SCOPE_ALL`], [`SCOPE_UNNAMED`] or [`SCOPE_NAMED`].
    pub scope: i64,
    /// The event name for [`SCOPE_NAMED`], else empty.
    pub name: String,
}

/// What a rollup row adds up: events and their users.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tally {
    /// Events counted.
    pub events: i64,
    /// Their unique users (`COALESCE(user_id, anonymous_id)`; events with
    /// neither add none).
    pub users: Sketch,
}

impl Tally {
    fn add(&mut self, user: Option<&str>) {
        self.events += 1;
        if let Some(user) = user {
            self.users.insert(user);
        }
    }

    fn merge(&mut self, other: &Tally) {
        self.events += other.events;
        self.users.merge(&other.users);
    }
}

/// The rollup changes of some new events: what to add to each row.
#[derive(Debug, Clone, Default)]
pub struct Rollups {
    rows: BTreeMap<Key, Tally>,
}

impl Rollups {
    /// No changes.
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts one newly stored event (an event whose insert was skipped as
    /// a duplicate must never be added). Events before 1970 are not rolled
    /// up (see the module docs).
    pub fn add(&mut self, source: &str, name: Option<&str>, user: Option<&str>, timestamp_ms: i64) {
        if timestamp_ms < 0 {
            return;
        }
        for width_ms in GRAINS {
            let bucket_ms = timestamp_ms / width_ms * width_ms;
            let key = |scope, name: &str| Key {
                source: source.to_owned(),
                width_ms,
                bucket_ms,
                scope,
                name: name.to_owned(),
            };
            self.rows.entry(key(SCOPE_ALL, "")).or_default().add(user);
            let own = match name {
                Some(name) => key(SCOPE_NAMED, name),
                None => key(SCOPE_UNNAMED, ""),
            };
            self.rows.entry(own).or_default().add(user);
        }
    }

    /// Whether there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Rows to write.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// The rows and what each gains, in key order.
    pub fn rows(&self) -> impl Iterator<Item = (&Key, &Tally)> {
        self.rows.iter()
    }

    /// Merges a row's stored users into its change, so that the change's
    /// sketch is the row's new value (the count stays the increment:
    /// writes add it to the stored count).
    pub fn merge_stored(&mut self, key: &Key, stored: &Sketch) {
        if let Some(tally) = self.rows.get_mut(key) {
            tally.users.merge(stored);
        }
    }

    /// The keys, in chunks of [`ROWS_PER_STATEMENT`], for [`select_stored`]
    /// and [`lock_rows`].
    pub fn key_chunks(&self) -> Vec<Vec<&Key>> {
        let keys: Vec<&Key> = self.rows.keys().collect();
        keys.chunks(ROWS_PER_STATEMENT)
            .map(<[&Key]>::to_vec)
            .collect()
    }

    /// The rows, in chunks of [`ROWS_PER_STATEMENT`], for [`upsert`].
    pub fn row_chunks(&self) -> Vec<Vec<(&Key, &Tally)>> {
        let rows: Vec<(&Key, &Tally)> = self.rows.iter().collect();
        rows.chunks(ROWS_PER_STATEMENT)
            .map(<[(&Key, &Tally)]>::to_vec)
            .collect()
    }
}

const COLUMNS: &str = "source, width_ms, bucket_ms, scope, name, events, users";
const PRIMARY_KEY: &str = "source, width_ms, bucket_ms, scope, name";

/// `(?a, ?b, ...)` rows of `width` numbered placeholders, from `?first`;
/// with `types`, each placeholder is cast to its column's type (where no
/// column gives PostgreSQL the type, as in a `VALUES` list of its own).
fn placeholder_rows(rows: usize, width: usize, first: usize, types: Option<&[&str]>) -> String {
    let mut sql = String::with_capacity(rows * width * 8);
    for row in 0..rows {
        if row > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for column in 0..width {
            if column > 0 {
                sql.push_str(", ");
            }
            let n = first + row * width + column;
            match types.and_then(|t| t.get(column)) {
                Some(ty) => sql.push_str(&format!("CAST(?{n} AS {ty})")),
                None => sql.push_str(&format!("?{n}")),
            }
        }
        sql.push(')');
    }
    sql
}

/// The key columns' types, for [`placeholder_rows`].
const KEY_TYPES: [&str; 5] = ["TEXT", "BIGINT", "BIGINT", "BIGINT", "TEXT"];

fn key_params(key: &Key) -> [Param; 5] {
    [
        Param::Text(key.source.clone()),
        Param::Int(key.width_ms),
        Param::Int(key.bucket_ms),
        Param::Int(key.scope),
        Param::Text(key.name.clone()),
    ]
}

/// The stored sketches of `keys` (rows that exist), as columns `source`,
/// `width_ms`, `bucket_ms`, `scope`, `name`, `users`; read with
/// [`stored_row`]. `CROSS JOIN` makes SQLite loop over the keys and look
/// each up in the primary key (left to itself, SQLite 3.50 scanned the
/// table, so seeding 1M events slowed down as the rollups grew).
pub fn select_stored(keys: &[&Key]) -> (String, Vec<Param>) {
    let sql = format!(
        "WITH k (source, width_ms, bucket_ms, scope, name) AS (VALUES {}) \
         SELECT r.source, r.width_ms, r.bucket_ms, r.scope, r.name, r.users FROM k \
         CROSS JOIN rollups r WHERE r.source = k.source AND r.width_ms = k.width_ms \
         AND r.bucket_ms = k.bucket_ms AND r.scope = k.scope AND r.name = k.name",
        placeholder_rows(keys.len(), 5, 1, Some(&KEY_TYPES))
    );
    (sql, keys.iter().flat_map(|k| key_params(k)).collect())
}

/// A row of [`select_stored`] from its columns (`Int`, `Text` and the
/// sketch's bytes).
pub fn stored_row(
    source: String,
    width_ms: i64,
    bucket_ms: i64,
    scope: i64,
    name: String,
    users: &[u8],
) -> Result<(Key, Sketch), String> {
    let key = Key {
        source,
        width_ms,
        bucket_ms,
        scope,
        name,
    };
    let sketch = Sketch::from_bytes(users).map_err(|e| format!("rollup {key:?}: {e}"))?;
    Ok((key, sketch))
}

/// PostgreSQL only: creates the missing rows of `keys` (empty) and locks
/// them all, in key order, before their sketches are read, so that two
/// transactions merging into one row take turns (without it both would
/// read the old sketch and the second write would drop the first's
/// users). SQLite's write transaction already serialises writers.
pub fn lock_rows(keys: &[&Key]) -> (String, Vec<Param>) {
    let sql = format!(
        "INSERT INTO rollups ({COLUMNS}) VALUES {} ON CONFLICT ({PRIMARY_KEY}) DO UPDATE SET events = rollups.events",
        placeholder_rows(keys.len(), 7, 1, None)
    );
    let params = keys
        .iter()
        .flat_map(|k| {
            let mut row = key_params(k).to_vec();
            row.extend([Param::Int(0), Param::Blob(Vec::new())]);
            row
        })
        .collect();
    (sql, params)
}

/// Writes `rows` (after [`Rollups::merge_stored`]): adds each count to the
/// stored one and stores the merged sketch.
pub fn upsert(rows: &[(&Key, &Tally)]) -> (String, Vec<Param>) {
    let sql = format!(
        "INSERT INTO rollups ({COLUMNS}) VALUES {} ON CONFLICT ({PRIMARY_KEY}) DO UPDATE SET events = rollups.events + excluded.events, users = excluded.users",
        placeholder_rows(rows.len(), 7, 1, None)
    );
    let params = rows
        .iter()
        .flat_map(|(k, t)| {
            let mut row = key_params(k).to_vec();
            row.extend([Param::Int(t.events), Param::Blob(t.users.to_bytes())]);
            row
        })
        .collect();
    (sql, params)
}

/// The rows of the events table to roll up, for the migration that
/// backfills a database stored before rollups existed: columns `id`,
/// `source`, `name`, user, `timestamp_ms`; `?1` the last id seen, `?2`
/// the page size.
pub const BACKFILL_PAGE: &str = "SELECT id, source, name, COALESCE(user_id, anonymous_id), timestamp_ms FROM events WHERE id > ?1 ORDER BY id LIMIT ?2";

/// Which counts a query wants, when rollups can answer it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    /// All events of each bucket, ungrouped.
    All,
    /// Grouped by event name (`group_by=event`), `NULL` for unnamed events.
    ByName,
    /// Only events named this (`event=NAME`).
    Named(String),
}

/// How to answer a window from rollups: aligned ranges of each grain, and
/// the raw ranges at the edges no minute covers.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    /// `(grain, from, to)`: rollup buckets of `grain` starting in
    /// `[from, to)` (both multiples of the grain).
    pub rollups: Vec<(i64, i64, i64)>,
    /// `[from, to)` ranges (each shorter than a minute) read from events.
    pub raw: Vec<(i64, i64)>,
}

/// The plan for buckets of `width_ms` (one of [`GRAINS`]) over
/// `[from, to)`: the coarsest grains that fit, finer ones at the edges.
/// `None` when rollups cannot answer it: another width, or a window that
/// reaches before 1970.
pub fn plan(width_ms: i64, from: i64, to: i64) -> Option<Plan> {
    let level = GRAINS.iter().position(|&g| g == width_ms)?;
    if from < 0 {
        return None;
    }
    let mut plan = Plan::default();
    cover(&mut plan, level, from, to);
    Some(plan)
}

fn cover(plan: &mut Plan, level: usize, from: i64, to: i64) {
    if from >= to {
        return;
    }
    let grain = GRAINS[level];
    // `from` is not negative, so division rounds down; `to` may be
    // i64::MAX, and rounding `from` up may then overflow (nothing of it).
    let lo = match from.checked_add(grain - 1) {
        Some(x) => x / grain * grain,
        None => to,
    };
    let hi = to / grain * grain;
    if lo < hi {
        plan.rollups.push((grain, lo, hi));
        cover_finer(plan, level, from, lo);
        cover_finer(plan, level, hi, to);
    } else {
        cover_finer(plan, level, from, to);
    }
}

fn cover_finer(plan: &mut Plan, level: usize, from: i64, to: i64) {
    if from >= to {
        return;
    }
    match level.checked_sub(1) {
        Some(finer) => cover(plan, finer, from, to),
        None => plan.raw.push((from, to)),
    }
}

/// The `WHERE` condition a [`Selection`] puts on rollups, with `param` the
/// placeholder of the name of [`Selection::Named`].
fn scope_condition(selection: &Selection, param: usize) -> String {
    match selection {
        Selection::All => format!("scope = {SCOPE_ALL}"),
        Selection::ByName => format!("scope <> {SCOPE_ALL}"),
        Selection::Named(_) => format!("scope = {SCOPE_NAMED} AND name = ?{param}"),
    }
}

/// The statement reading a plan's rollup rows (one `SELECT` per range,
/// each an index range), as columns `bucket_ms`, `scope`, `name`,
/// `events`, `users`: `?1` the source, `?2` the event name if any, then
/// each range's grain, from and to.
pub fn select_rollups(plan: &Plan, source: &str, selection: &Selection) -> (String, Vec<Param>) {
    let mut params = vec![Param::Text(source.to_owned())];
    if let Selection::Named(name) = selection {
        params.push(Param::Text(name.clone()));
    }
    let condition = scope_condition(selection, 2);
    let mut selects = Vec::new();
    for &(grain, from, to) in &plan.rollups {
        let n = params.len();
        selects.push(format!(
            "SELECT bucket_ms, scope, name, events, users FROM rollups WHERE source = ?1 AND width_ms = ?{} AND bucket_ms >= ?{} AND bucket_ms < ?{} AND {condition}",
            n + 1,
            n + 2,
            n + 3
        ));
        params.extend([Param::Int(grain), Param::Int(from), Param::Int(to)]);
    }
    (selects.join(" UNION ALL "), params)
}

/// The statement reading a plan's raw edges, as columns `timestamp_ms`,
/// `name`, user: `?1` the source, `?2` the event name if any, then each
/// range's from and to.
pub fn select_raw(plan: &Plan, source: &str, selection: &Selection) -> (String, Vec<Param>) {
    let mut params = vec![Param::Text(source.to_owned())];
    let mut name_condition = String::new();
    if let Selection::Named(name) = selection {
        params.push(Param::Text(name.clone()));
        name_condition.push_str(" AND name = ?2");
    }
    let mut selects = Vec::new();
    for &(from, to) in &plan.raw {
        let n = params.len();
        selects.push(format!(
            "SELECT timestamp_ms, name, COALESCE(user_id, anonymous_id) FROM events WHERE source = ?1 AND timestamp_ms >= ?{} AND timestamp_ms < ?{}{name_condition}",
            n + 1,
            n + 2
        ));
        params.extend([Param::Int(from), Param::Int(to)]);
    }
    (selects.join(" UNION ALL "), params)
}

/// One bucket (and group) of a counts answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Bucket {
    /// The bucket's start, ms.
    pub start: i64,
    /// The group: the event name under [`Selection::ByName`] (`None` for
    /// unnamed events), the name under [`Selection::Named`], else `None`.
    pub group: Option<String>,
    /// Events, exact.
    pub count: i64,
    /// Unique users: exact while small, else estimated (see
    /// [`crate::hll`]), never above `count`.
    pub unique_users: u64,
    /// Whether `unique_users` is exact.
    pub exact: bool,
}

/// A counts answer being assembled from rollup rows and raw edges: rows
/// of one target bucket are merged (counts added, sketches merged, never
/// unique counts added).
#[derive(Debug, Clone)]
pub struct Counts {
    width_ms: i64,
    selection: Selection,
    buckets: BTreeMap<(i64, Option<String>), Tally>,
}

impl Counts {
    /// An empty answer with buckets of `width_ms`.
    pub fn new(width_ms: i64, selection: Selection) -> Self {
        Self {
            width_ms,
            selection,
            buckets: BTreeMap::new(),
        }
    }

    fn group(&self, scope: i64, name: Option<String>) -> Option<String> {
        match &self.selection {
            Selection::All => None,
            Selection::ByName if scope == SCOPE_UNNAMED => None,
            Selection::ByName | Selection::Named(_) => name,
        }
    }

    fn tally(&mut self, start: i64, group: Option<String>) -> &mut Tally {
        let bucket = start / self.width_ms * self.width_ms;
        self.buckets.entry((bucket, group)).or_default()
    }

    /// Adds a rollup row of [`select_rollups`].
    pub fn add_rollup(
        &mut self,
        bucket_ms: i64,
        scope: i64,
        name: String,
        events: i64,
        users: &[u8],
    ) -> Result<(), String> {
        let users = Sketch::from_bytes(users)?;
        let group = self.group(scope, Some(name));
        self.tally(bucket_ms, group).merge(&Tally { events, users });
        Ok(())
    }

    /// Adds an event of [`select_raw`].
    pub fn add_event(&mut self, timestamp_ms: i64, name: Option<String>, user: Option<&str>) {
        let scope = if name.is_some() {
            SCOPE_NAMED
        } else {
            SCOPE_UNNAMED
        };
        let group = self.group(scope, name);
        self.tally(timestamp_ms, group).add(user);
    }

    /// The buckets in order of start, then group (`None` first, then
    /// names by their bytes); empty ones left out.
    pub fn buckets(&self) -> Vec<Bucket> {
        self.buckets
            .iter()
            .filter(|(_, t)| t.events > 0)
            .map(|((start, group), t)| Bucket {
                start: *start,
                group: group.clone(),
                count: t.events,
                unique_users: t.users.count().min(t.events.max(0) as u64),
                exact: t.users.is_exact(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_touches_two_rows_per_grain() {
        let mut r = Rollups::new();
        r.add("web", Some("a"), Some("u1"), HOUR_MS + 61_000);
        r.add("web", None, Some("u2"), HOUR_MS + 62_000);
        r.add("web", Some("a"), Some("u1"), DAY_MS - 1);
        // Before 1970: never rolled up.
        r.add("web", Some("a"), Some("u1"), -5);
        let rows: Vec<(i64, i64, i64, &str, i64, u64)> = r
            .rows()
            .map(|(k, t)| {
                (
                    k.width_ms,
                    k.bucket_ms,
                    k.scope,
                    k.name.as_str(),
                    t.events,
                    t.users.count(),
                )
            })
            .collect();
        assert_eq!(
            rows,
            vec![
                (MINUTE_MS, HOUR_MS + MINUTE_MS, SCOPE_ALL, "", 2, 2),
                (MINUTE_MS, HOUR_MS + MINUTE_MS, SCOPE_UNNAMED, "", 1, 1),
                (MINUTE_MS, HOUR_MS + MINUTE_MS, SCOPE_NAMED, "a", 1, 1),
                (MINUTE_MS, DAY_MS - MINUTE_MS, SCOPE_ALL, "", 1, 1),
                (MINUTE_MS, DAY_MS - MINUTE_MS, SCOPE_NAMED, "a", 1, 1),
                (HOUR_MS, HOUR_MS, SCOPE_ALL, "", 2, 2),
                (HOUR_MS, HOUR_MS, SCOPE_UNNAMED, "", 1, 1),
                (HOUR_MS, HOUR_MS, SCOPE_NAMED, "a", 1, 1),
                (HOUR_MS, DAY_MS - HOUR_MS, SCOPE_ALL, "", 1, 1),
                (HOUR_MS, DAY_MS - HOUR_MS, SCOPE_NAMED, "a", 1, 1),
                (DAY_MS, 0, SCOPE_ALL, "", 3, 2),
                (DAY_MS, 0, SCOPE_UNNAMED, "", 1, 1),
                (DAY_MS, 0, SCOPE_NAMED, "a", 2, 1),
            ]
        );
    }

    #[test]
    fn plans_use_the_coarsest_grain_that_fits() {
        // Aligned: one range.
        assert_eq!(
            plan(HOUR_MS, 0, 2 * DAY_MS),
            Some(Plan {
                rollups: vec![(HOUR_MS, 0, 2 * DAY_MS)],
                raw: vec![]
            })
        );
        // Unaligned at both ends, by day: days, then hours, minutes, raw.
        let from = DAY_MS - HOUR_MS - MINUTE_MS - 5;
        let to = 3 * DAY_MS + HOUR_MS + MINUTE_MS + 7;
        assert_eq!(
            plan(DAY_MS, from, to),
            Some(Plan {
                rollups: vec![
                    (DAY_MS, DAY_MS, 3 * DAY_MS),
                    (HOUR_MS, DAY_MS - HOUR_MS, DAY_MS),
                    (MINUTE_MS, DAY_MS - HOUR_MS - MINUTE_MS, DAY_MS - HOUR_MS),
                    (HOUR_MS, 3 * DAY_MS, 3 * DAY_MS + HOUR_MS),
                    (
                        MINUTE_MS,
                        3 * DAY_MS + HOUR_MS,
                        3 * DAY_MS + HOUR_MS + MINUTE_MS
                    ),
                ],
                raw: vec![
                    (from, DAY_MS - HOUR_MS - MINUTE_MS),
                    (3 * DAY_MS + HOUR_MS + MINUTE_MS, to)
                ],
            })
        );
        // Inside one minute: raw only.
        assert_eq!(
            plan(MINUTE_MS, 5, 10),
            Some(Plan {
                rollups: vec![],
                raw: vec![(5, 10)]
            })
        );
        // The API's defaults (0 .. i64::MAX) and other extremes.
        let whole = plan(MINUTE_MS, 0, i64::MAX).expect("a plan");
        assert_eq!(
            whole.rollups[0],
            (MINUTE_MS, 0, i64::MAX / MINUTE_MS * MINUTE_MS)
        );
        assert!(plan(DAY_MS, i64::MAX - 3, i64::MAX).is_some());
        assert_eq!(plan(HOUR_MS, -1, 10), None);
        assert_eq!(plan(2 * HOUR_MS, 0, 10), None);
        assert_eq!(plan(HOUR_MS, 10, 5), Some(Plan::default()));
    }

    /// The plan covers the window exactly: every millisecond once.
    #[test]
    fn plans_cover_every_instant_once() {
        let mut rng = 0x1234_5678_u64;
        let mut next = |bound: i64| {
            rng = rng.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            ((rng >> 33) as i64) % bound
        };
        for _ in 0..500 {
            let width = GRAINS[next(3) as usize];
            let from = next(3 * DAY_MS);
            let to = from + next(3 * DAY_MS);
            let p = plan(width, from, to).expect("a plan");
            let mut pieces: Vec<(i64, i64)> = p.raw.clone();
            for &(grain, lo, hi) in &p.rollups {
                assert!(grain <= width && width % grain == 0);
                assert_eq!((lo % grain, hi % grain), (0, 0));
                pieces.push((lo, hi));
            }
            for &(lo, hi) in &p.raw {
                assert!(hi - lo < MINUTE_MS);
            }
            pieces.sort();
            let mut at = from;
            for (lo, hi) in pieces {
                assert_eq!(lo, at, "{from}..{to} by {width}: {p:?}");
                at = hi;
            }
            assert_eq!(at, to.max(from));
            assert!(p.raw.len() <= 2 && p.rollups.len() <= 5);
        }
    }

    #[test]
    fn statements_number_every_placeholder() {
        let mut r = Rollups::new();
        r.add("web", Some("a"), Some("u1"), 0);
        let keys = r.key_chunks();
        let (sql, params) = select_stored(&keys[0]);
        assert_eq!(params.len(), 6 * 5);
        assert!(
            sql.contains("(CAST(?26 AS TEXT), CAST(?27 AS BIGINT), CAST(?28 AS BIGINT), CAST(?29 AS BIGINT), CAST(?30 AS TEXT))"),
            "{sql}"
        );
        let (sql, params) = lock_rows(&keys[0]);
        assert_eq!(params.len(), 6 * 7);
        assert!(sql.ends_with("DO UPDATE SET events = rollups.events"));
        let rows = r.row_chunks();
        let (sql, params) = upsert(&rows[0]);
        assert_eq!(params.len(), 6 * 7);
        assert!(sql.contains("?42)"), "{sql}");
        let p = plan(HOUR_MS, 5, DAY_MS + 5).expect("a plan");
        let (sql, params) = select_rollups(&p, "web", &Selection::Named("x".into()));
        assert_eq!(params.len(), 2 + 3 * p.rollups.len());
        assert!(sql.contains("name = ?2") && sql.contains(&format!("?{}", params.len())));
        let (sql, params) = select_raw(&p, "web", &Selection::All);
        assert_eq!(params.len(), 1 + 2 * p.raw.len());
        assert!(!sql.contains("name ="));
    }

    /// Counts merge rows of one target bucket: hours into a day add their
    /// counts and merge their sketches (a user in two hours counts once).
    #[test]
    fn counts_merge_sketches_never_add_uniques() {
        let mut r = Rollups::new();
        for hour in 0..24 {
            r.add("web", Some("a"), Some("same user"), hour * HOUR_MS);
            r.add(
                "web",
                Some("b"),
                Some(&format!("user {hour}")),
                hour * HOUR_MS,
            );
        }
        r.add("web", None, None, 5);
        let mut counts = Counts::new(DAY_MS, Selection::ByName);
        for (k, t) in r
            .rows()
            .filter(|(k, _)| k.width_ms == HOUR_MS && k.scope != SCOPE_ALL)
        {
            counts
                .add_rollup(
                    k.bucket_ms,
                    k.scope,
                    k.name.clone(),
                    t.events,
                    &t.users.to_bytes(),
                )
                .expect("valid sketch");
        }
        counts.add_event(DAY_MS + 1, Some("a".into()), Some("late"));
        let b = counts.buckets();
        assert_eq!(b.len(), 4);
        assert_eq!(
            (b[0].group.as_deref(), b[0].count, b[0].unique_users),
            (None, 1, 0)
        );
        assert_eq!(
            (b[1].group.as_deref(), b[1].count, b[1].unique_users),
            (Some("a"), 24, 1)
        );
        assert_eq!(
            (b[2].group.as_deref(), b[2].count, b[2].unique_users),
            (Some("b"), 24, 24)
        );
        assert_eq!((b[3].start, b[3].count, b[3].unique_users), (DAY_MS, 1, 1));
        assert!(b.iter().all(|b| b.exact));
        assert!(
            Counts::new(DAY_MS, Selection::All)
                .add_rollup(0, SCOPE_ALL, String::new(), 1, &[7])
                .is_err()
        );
    }
}
