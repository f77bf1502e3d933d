//! The reporting statements over the `events` table: funnels, retention
//! cohorts, and counts broken down by a property (top pages, top
//! referrers and any other breakdown are the same statement). Each report
//! is a validated description ([`Funnel`], [`Retention`], [`Breakdown`])
//! that builds one statement for a [`Dialect`], with every input bound as
//! a parameter. Plain Rust with no Spin dependency, so the native
//! benchmark times the very statements the query function runs.
//!
//! A user is `COALESCE(user_id, anonymous_id)` (events with neither are
//! left out). Schema version 4's index `events_by_name_user` (source,
//! name, user, time) lets every step of a funnel and every return of a
//! cohort be one index seek per user, and `events_by_type` finds page
//! events without reading the others.

use thiserror::Error;

use crate::Param;

/// A user, in SQL over an `events` row aliased `e` (the expression schema
/// version 4 indexes, so it must be spelled exactly so).
const USER: &str = "COALESCE(e.user_id, e.anonymous_id)";

/// The most steps a funnel may have: each is one more index seek per user.
pub const MAX_STEPS: usize = 10;
/// The most property filters one funnel step may have.
pub const MAX_FILTERS: usize = 5;
/// The longest conversion window: a year (366 days), in ms.
pub const MAX_WINDOW_MS: i64 = 366 * DAY_MS;
/// The most periods after the first a retention report may follow.
pub const MAX_PERIODS: i64 = 366;
/// The most rows a breakdown may return.
pub const MAX_ROWS: i64 = 1000;

const DAY_MS: i64 = 86_400_000;
/// A week, in ms.
const WEEK_MS: i64 = 7 * DAY_MS;
/// Weeks start on Monday: 1970-01-05, four days after the epoch.
const WEEK_OFFSET_MS: i64 = 4 * DAY_MS;

/// Why a report's description was refused: said so that a client can fix
/// its request (the query API answers these with `400`).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ReportError {
    /// A funnel needs two steps at least, and at most [`MAX_STEPS`].
    #[error("a funnel needs between 2 and {MAX_STEPS} steps, not {0}")]
    StepCount(usize),
    /// A step without an event name.
    #[error("funnel step {0} has no event name")]
    EmptyStep(usize),
    /// A step with more than [`MAX_FILTERS`] property filters.
    #[error("funnel step {0} has more than {MAX_FILTERS} property filters")]
    TooManyFilters(usize),
    /// A conversion window out of range.
    #[error("the conversion window must be between 1 ms and 366 days, not {0} ms")]
    Window(i64),
    /// A time range that selects nothing.
    #[error("from ({from}) must be before to ({to})")]
    Range {
        /// The range's start.
        from: i64,
        /// The range's end.
        to: i64,
    },
    /// A retention report following no periods, or too many.
    #[error("periods must be between 1 and {MAX_PERIODS}, not {0}")]
    Periods(i64),
    /// A breakdown's row limit out of range.
    #[error("limit must be between 1 and {MAX_ROWS}, not {0}")]
    Limit(i64),
    /// A retention report without a start or return event name.
    #[error("{0} must name an event")]
    EmptyEvent(&'static str),
}

/// The SQL dialect a statement is written for: the two backends differ in
/// JSON access and text ordering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// SQLite (3.38 or later: JSON functions and window functions).
    Sqlite,
    /// PostgreSQL (`properties` is text, read as `jsonb`).
    Postgres,
}

impl Dialect {
    /// The bound form of a property path (validated names, no quoting
    /// needed beyond what each dialect's path syntax wants).
    pub fn path_param(self, names: &[String]) -> Param {
        let quoted: Vec<String> = names.iter().map(|n| format!("\"{n}\"")).collect();
        Param::Text(match self {
            Dialect::Sqlite => format!("$.{}", quoted.join(".")),
            Dialect::Postgres => format!("{{{}}}", quoted.join(",")),
        })
    }

    /// The text form of the property at the path bound as `path` (a
    /// placeholder) in the `properties` of row `alias`: strings as they
    /// are, `true`/`false`, numbers as the database prints them, `NULL`
    /// for JSON null or a missing property. What breakdowns group by, so
    /// both dialects give the same groups.
    pub fn property_text(self, alias: &str, path: &str) -> String {
        match self {
            Dialect::Sqlite => format!(
                "(CASE json_type({alias}.properties, {path}) WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' WHEN 'null' THEN NULL ELSE CAST(json_extract({alias}.properties, {path}) AS TEXT) END)"
            ),
            Dialect::Postgres => {
                format!("({alias}.properties::jsonb #>> CAST({path} AS text)::text[])")
            }
        }
    }

    /// The condition that the property at `path` of row `alias` equals the
    /// JSON scalar bound (as JSON text) at `value`.
    pub fn property_equals(self, alias: &str, path: &str, value: &str) -> String {
        match self {
            Dialect::Sqlite => {
                format!("json_extract({alias}.properties, {path}) = json_extract({value}, '$')")
            }
            Dialect::Postgres => format!(
                "({alias}.properties::jsonb #> CAST({path} AS text)::text[]) = CAST({value} AS text)::jsonb"
            ),
        }
    }

    /// `events e`, for SQLite read through `events_by_name_user`: the
    /// lookups of one user's events of one name (a first event per user,
    /// a funnel step, a retention return) are one seek in that index, but
    /// without statistics (the store never runs `ANALYZE`) SQLite's
    /// planner prefers a time range of `events_by_time_users` instead,
    /// which reads every event of the window for every user.
    pub fn events_by_user(self) -> &'static str {
        match self {
            Dialect::Sqlite => "events e INDEXED BY events_by_name_user",
            Dialect::Postgres => "events e",
        }
    }

    /// `expr` ordered byte-wise in both dialects (PostgreSQL's default
    /// collation may follow a locale; SQLite's is byte-wise already).
    pub fn byte_order(self, expr: &str) -> String {
        match self {
            Dialect::Sqlite => expr.to_owned(),
            Dialect::Postgres => format!("{expr} COLLATE \"C\""),
        }
    }
}

/// A statement's parameters, numbered as they are bound.
#[derive(Default)]
struct Binder {
    params: Vec<Param>,
}

impl Binder {
    /// Binds `param`; returns its placeholder.
    fn bind(&mut self, param: Param) -> String {
        self.params.push(param);
        format!("?{}", self.params.len())
    }
}

/// A property filter of a funnel step: the property at `path` must equal
/// the JSON scalar `json` (JSON text, e.g. `"pro"` or `42` or `true`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PropertyFilter {
    /// The property's path (validated names).
    pub path: Vec<String>,
    /// The value, as JSON text.
    pub json: String,
}

/// One funnel step: events with this name (`event` of track, `name` of
/// page and screen) whose properties pass every filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// The event name.
    pub event: String,
    /// Property filters, all of which must hold.
    pub filters: Vec<PropertyFilter>,
}

/// A funnel: for each user, their first event of step 1 with a time in
/// `[from, to)` starts it; each later step is the user's first event of
/// that step strictly after the previous step's, and no later than the
/// conversion window after step 1's. The statement answers, per step (and
/// breakdown group), how many users reached it and the lower median of
/// their times since the previous step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Funnel {
    steps: Vec<Step>,
    window_ms: i64,
    from: i64,
    to: i64,
    breakdown: Option<Vec<String>>,
}

/// One row of a funnel's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunnelRow {
    /// The step, from 1.
    pub step: usize,
    /// `None` for all users; `Some` for the users of one breakdown group,
    /// the text of the property on their step-1 event (`Some(None)`: the
    /// event has no such property).
    pub group: Option<Option<String>>,
    /// Users who reached the step.
    pub users: i64,
    /// The lower median of their times since the previous step, ms (0 for
    /// step 1).
    pub median_ms: i64,
}

impl Funnel {
    /// A funnel over `steps` with a conversion window of `window_ms`,
    /// starting in `[from, to)`, broken down by the property at
    /// `breakdown` (of each user's step-1 event) if given.
    pub fn new(
        steps: Vec<Step>,
        window_ms: i64,
        from: i64,
        to: i64,
        breakdown: Option<Vec<String>>,
    ) -> Result<Self, ReportError> {
        if !(2..=MAX_STEPS).contains(&steps.len()) {
            return Err(ReportError::StepCount(steps.len()));
        }
        for (i, step) in steps.iter().enumerate() {
            if step.event.is_empty() {
                return Err(ReportError::EmptyStep(i + 1));
            }
            if step.filters.len() > MAX_FILTERS {
                return Err(ReportError::TooManyFilters(i + 1));
            }
        }
        if !(1..=MAX_WINDOW_MS).contains(&window_ms) {
            return Err(ReportError::Window(window_ms));
        }
        if from >= to {
            return Err(ReportError::Range { from, to });
        }
        Ok(Self {
            steps,
            window_ms,
            from,
            to,
            breakdown,
        })
    }

    /// The steps.
    pub fn steps(&self) -> &[Step] {
        &self.steps
    }

    /// The conversion window, ms.
    pub fn window_ms(&self) -> i64 {
        self.window_ms
    }

    /// The breakdown property's path, if the funnel is broken down.
    pub fn breakdown(&self) -> Option<&[String]> {
        self.breakdown.as_deref()
    }

    /// The statement over `source`'s events, with its parameters. Its rows
    /// are `(step, overall, group, users, median_ms)` (`overall` 1 for all
    /// users, 0 for a breakdown group's), read by [`Funnel::row`]; a step
    /// (and group) no user reached has no row.
    pub fn statement(&self, dialect: Dialect, source: &str) -> (String, Vec<Param>) {
        let mut b = Binder::default();
        let src = b.bind(Param::Text(source.to_owned()));
        let from = b.bind(Param::Int(self.from));
        let to = b.bind(Param::Int(self.to));
        let window = b.bind(Param::Int(self.window_ms));
        let conditions: Vec<String> = self
            .steps
            .iter()
            .map(|step| {
                let mut c = format!(
                    "e.source = {src} AND e.name = {}",
                    b.bind(Param::Text(step.event.clone()))
                );
                for filter in &step.filters {
                    let path = b.bind(dialect.path_param(&filter.path));
                    let value = b.bind(Param::Text(filter.json.clone()));
                    c.push_str(" AND ");
                    c.push_str(&dialect.property_equals("e", &path, &value));
                }
                c
            })
            .collect();
        let first = &conditions[0];
        let by_user = dialect.events_by_user();
        let mut sql = format!(
            "WITH s1 AS (SELECT {USER} AS u, MIN(e.timestamp_ms) AS t1 FROM {by_user} \
             WHERE {first} AND e.timestamp_ms >= {from} AND e.timestamp_ms < {to} AND {USER} IS NOT NULL \
             GROUP BY {USER}), "
        );
        let group = match &self.breakdown {
            Some(path) => {
                let path = b.bind(dialect.path_param(path));
                format!(
                    "(SELECT {} FROM {by_user} WHERE {first} AND {USER} = p.u AND e.timestamp_ms = p.t1 ORDER BY e.id LIMIT 1)",
                    dialect.property_text("e", &path)
                )
            }
            None => "CAST(NULL AS TEXT)".to_owned(),
        };
        sql.push_str(&format!(
            "f1 AS (SELECT p.u AS u, {group} AS g, p.t1 AS t1 FROM s1 p)"
        ));
        let mut columns = "p.u AS u, p.g AS g, p.t1 AS t1".to_owned();
        for (i, condition) in conditions.iter().enumerate().skip(1) {
            let k = i + 1;
            sql.push_str(&format!(
                ", f{k} AS (SELECT {columns}, (SELECT MIN(e.timestamp_ms) FROM {by_user} \
                 WHERE {condition} AND {USER} = p.u AND e.timestamp_ms > p.t{i} AND e.timestamp_ms <= p.t1 + {window}) AS t{k} \
                 FROM f{i} p)"
            ));
            columns.push_str(&format!(", p.t{k} AS t{k}"));
        }
        let last = self.steps.len();
        let mut diffs = format!("SELECT 1 AS k, g, CAST(0 AS BIGINT) AS d FROM f{last}");
        for k in 2..=last {
            let i = k - 1;
            diffs.push_str(&format!(
                " UNION ALL SELECT {k}, g, t{k} - t{i} FROM f{last} WHERE t{k} IS NOT NULL"
            ));
        }
        // `o` 1: every user; 0: the users of breakdown group `g`.
        let mut scoped = "SELECT k, CAST(NULL AS TEXT) AS g, 1 AS o, d FROM diffs".to_owned();
        if self.breakdown.is_some() {
            scoped.push_str(" UNION ALL SELECT k, g, 0, d FROM diffs");
        }
        sql.push_str(&format!(
            ", diffs AS ({diffs}), scoped AS ({scoped}), ranked AS (SELECT k, g, o, d, \
             ROW_NUMBER() OVER (PARTITION BY k, o, g ORDER BY d) AS rn, COUNT(*) OVER (PARTITION BY k, o, g) AS n FROM scoped) \
             SELECT k, o, g, n, d FROM ranked WHERE rn = (n + 1) / 2 ORDER BY k"
        ));
        (sql, b.params)
    }

    /// One row of [`Funnel::statement`]'s answer from its cells `(step,
    /// overall, group, users, median)`; `None` if they are not of those
    /// types.
    pub fn row(
        step: Option<i64>,
        overall: Option<i64>,
        group: Option<&str>,
        users: Option<i64>,
        median_ms: Option<i64>,
    ) -> Option<FunnelRow> {
        Some(FunnelRow {
            step: usize::try_from(step?).ok()?,
            group: (overall? == 0).then(|| group.map(str::to_owned)),
            users: users?,
            median_ms: median_ms?,
        })
    }
}

/// How retention cohorts and their periods are cut: UTC days, or weeks
/// starting on Monday.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    /// A UTC day.
    Day,
    /// A week from Monday 00:00 UTC.
    Week,
}

impl Period {
    /// The period's length, ms.
    pub fn ms(self) -> i64 {
        match self {
            Period::Day => DAY_MS,
            Period::Week => WEEK_MS,
        }
    }

    /// Where periods start relative to the epoch, ms.
    fn offset_ms(self) -> i64 {
        match self {
            Period::Day => 0,
            Period::Week => WEEK_OFFSET_MS,
        }
    }

    /// The start of the period holding `ms` (for times from the first
    /// period start on).
    pub fn start(self, ms: i64) -> i64 {
        (ms - self.offset_ms()).div_euclid(self.ms()) * self.ms() + self.offset_ms()
    }
}

/// Retention: each user's first `start_event` with a time in `[from,
/// to)` puts them in the cohort of its period; they return in period `k`
/// (0 to `periods`) if they have a `return_event` at or after that first
/// event and within the `k`-th period after the cohort's start. Cohorts
/// start from the first period start on or after 1970-01-01 (Monday
/// 1970-01-05 for weeks): earlier events are left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retention {
    start_event: String,
    return_event: String,
    period: Period,
    periods: i64,
    from: i64,
    to: i64,
}

/// One row of a retention answer: a cohort's size (`period` `None`) or
/// its users returning in a period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionRow {
    /// The cohort's period start, ms.
    pub cohort: i64,
    /// The period after the cohort's start (0 is the cohort's own), or
    /// `None` for the cohort's size.
    pub period: Option<i64>,
    /// Users.
    pub users: i64,
}

impl Retention {
    /// Retention of users whose first `start_event` is in `[from, to)`,
    /// returning with `return_event`, over `periods` periods after the
    /// first.
    pub fn new(
        start_event: String,
        return_event: String,
        period: Period,
        periods: i64,
        from: i64,
        to: i64,
    ) -> Result<Self, ReportError> {
        if start_event.is_empty() {
            return Err(ReportError::EmptyEvent("start_event"));
        }
        if return_event.is_empty() {
            return Err(ReportError::EmptyEvent("return_event"));
        }
        if !(1..=MAX_PERIODS).contains(&periods) {
            return Err(ReportError::Periods(periods));
        }
        let from = from.max(period.offset_ms());
        if from >= to {
            return Err(ReportError::Range { from, to });
        }
        Ok(Self {
            start_event,
            return_event,
            period,
            periods,
            from,
            to,
        })
    }

    /// The period cohorts are cut by.
    pub fn period(&self) -> Period {
        self.period
    }

    /// The periods after the first that the report follows.
    pub fn periods(&self) -> i64 {
        self.periods
    }

    /// The statements over `source`'s events, with their parameters: the
    /// cohorts' sizes, then the returns (two statements: SQLite ran the
    /// two as one `UNION ALL` several times slower than apart). The rows
    /// of both are `(cohort, period, users)`, with period `-1` for a
    /// cohort's size, read by [`Retention::row`]; a period no one returned
    /// in has no row.
    pub fn statements(&self, dialect: Dialect, source: &str) -> [(String, Vec<Param>); 2] {
        let by_user = dialect.events_by_user();
        let cohorts = |b: &mut Binder| {
            let src = b.bind(Param::Text(source.to_owned()));
            let start = b.bind(Param::Text(self.start_event.clone()));
            let from = b.bind(Param::Int(self.from));
            let to = b.bind(Param::Int(self.to));
            let width = b.bind(Param::Int(self.period.ms()));
            let offset = b.bind(Param::Int(self.period.offset_ms()));
            let sql = format!(
                "WITH firsts AS (SELECT {USER} AS u, MIN(e.timestamp_ms) AS t FROM {by_user} \
                 WHERE e.source = {src} AND e.name = {start} AND e.timestamp_ms >= {from} AND e.timestamp_ms < {to} AND {USER} IS NOT NULL \
                 GROUP BY {USER}), \
                 cohorts AS (SELECT u, t, ((t - {offset}) / {width}) * {width} + {offset} AS cs FROM firsts)"
            );
            (sql, src, width)
        };
        let mut sizes = Binder::default();
        let (with, _, _) = cohorts(&mut sizes);
        let sizes_sql =
            format!("{with} SELECT cs, -1 AS k, COUNT(*) AS n FROM cohorts GROUP BY cs");
        let mut returns = Binder::default();
        let (with, src, width) = cohorts(&mut returns);
        let back = returns.bind(Param::Text(self.return_event.clone()));
        let span = returns.bind(Param::Int((self.periods + 1) * self.period.ms()));
        let returns_sql = format!(
            "{with} SELECT c.cs, (e.timestamp_ms - c.cs) / {width} AS k, COUNT(DISTINCT c.u) AS n FROM cohorts c \
             JOIN {by_user} ON e.source = {src} AND e.name = {back} AND {USER} = c.u \
             AND e.timestamp_ms >= c.t AND e.timestamp_ms < c.cs + {span} \
             GROUP BY c.cs, (e.timestamp_ms - c.cs) / {width}"
        );
        [(sizes_sql, sizes.params), (returns_sql, returns.params)]
    }

    /// One row of [`Retention::statements`]' answers from its cells.
    pub fn row(
        cohort: Option<i64>,
        period: Option<i64>,
        users: Option<i64>,
    ) -> Option<RetentionRow> {
        let period = period?;
        Some(RetentionRow {
            cohort: cohort?,
            period: (period >= 0).then_some(period),
            users: users?,
        })
    }
}

/// Counts of events and unique users by the text of one property, most
/// events first (ties by the value, byte-wise, values before none), for
/// the events of a source in `[from, to)`, optionally only one type
/// (`page` for top pages and referrers) and one name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Breakdown {
    path: Vec<String>,
    kind: Option<String>,
    name: Option<String>,
    from: i64,
    to: i64,
    limit: i64,
}

/// One row of a breakdown: a property's value and its counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakdownRow {
    /// The property's text (`None`: the events without it).
    pub value: Option<String>,
    /// Events.
    pub events: i64,
    /// Unique users among them.
    pub users: i64,
}

impl Breakdown {
    /// The breakdown by the property at `path` of the events of type
    /// `kind` and name `name` (each if given) in `[from, to)`, the `limit`
    /// largest groups.
    pub fn new(
        path: Vec<String>,
        kind: Option<String>,
        name: Option<String>,
        from: i64,
        to: i64,
        limit: i64,
    ) -> Result<Self, ReportError> {
        if !(1..=MAX_ROWS).contains(&limit) {
            return Err(ReportError::Limit(limit));
        }
        if from >= to {
            return Err(ReportError::Range { from, to });
        }
        Ok(Self {
            path,
            kind,
            name,
            from,
            to,
            limit,
        })
    }

    /// The statement over `source`'s events, with its parameters; rows are
    /// `(value, events, users)`.
    pub fn statement(&self, dialect: Dialect, source: &str) -> (String, Vec<Param>) {
        let mut b = Binder::default();
        let src = b.bind(Param::Text(source.to_owned()));
        let from = b.bind(Param::Int(self.from));
        let to = b.bind(Param::Int(self.to));
        let path = b.bind(dialect.path_param(&self.path));
        let mut condition =
            format!("e.source = {src} AND e.timestamp_ms >= {from} AND e.timestamp_ms < {to}");
        if let Some(kind) = &self.kind {
            condition.push_str(&format!(
                " AND e.type = {}",
                b.bind(Param::Text(kind.clone()))
            ));
        }
        if let Some(name) = &self.name {
            condition.push_str(&format!(
                " AND e.name = {}",
                b.bind(Param::Text(name.clone()))
            ));
        }
        let limit = b.bind(Param::Int(self.limit));
        let sql = format!(
            "SELECT v, n, users FROM (SELECT {} AS v, COUNT(*) AS n, COUNT(DISTINCT {USER}) AS users \
             FROM events e WHERE {condition} GROUP BY 1) AS t \
             ORDER BY n DESC, (v IS NULL), {} LIMIT {limit}",
            dialect.property_text("e", &path),
            dialect.byte_order("v"),
        );
        (sql, b.params)
    }

    /// One row of [`Breakdown::statement`]'s answer from its cells.
    pub fn row(
        value: Option<&str>,
        events: Option<i64>,
        users: Option<i64>,
    ) -> Option<BreakdownRow> {
        Some(BreakdownRow {
            value: value.map(str::to_owned),
            events: events?,
            users: users?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(name: &str) -> Step {
        Step {
            event: name.to_owned(),
            filters: vec![],
        }
    }

    #[test]
    fn funnels_refuse_bad_descriptions() {
        let ok = |steps: Vec<Step>, window, from, to| Funnel::new(steps, window, from, to, None);
        assert_eq!(
            ok(vec![step("a")], 1000, 0, 10).err(),
            Some(ReportError::StepCount(1))
        );
        assert_eq!(
            ok(vec![step("a"); 11], 1000, 0, 10).err(),
            Some(ReportError::StepCount(11))
        );
        assert_eq!(
            ok(vec![step("a"), step("")], 1000, 0, 10).err(),
            Some(ReportError::EmptyStep(2))
        );
        assert_eq!(
            ok(vec![step("a"), step("b")], 0, 0, 10).err(),
            Some(ReportError::Window(0))
        );
        assert_eq!(
            ok(vec![step("a"), step("b")], MAX_WINDOW_MS + 1, 0, 10).err(),
            Some(ReportError::Window(MAX_WINDOW_MS + 1))
        );
        assert_eq!(
            ok(vec![step("a"), step("b")], 1000, 10, 10).err(),
            Some(ReportError::Range { from: 10, to: 10 })
        );
        let filter = PropertyFilter {
            path: vec!["plan".into()],
            json: "\"pro\"".into(),
        };
        let crowded = Step {
            event: "a".into(),
            filters: vec![filter; MAX_FILTERS + 1],
        };
        assert_eq!(
            ok(vec![step("a"), crowded], 1000, 0, 10).err(),
            Some(ReportError::TooManyFilters(2))
        );
        assert!(ok(vec![step("a"), step("a")], 1000, 0, 10).is_ok());
    }

    #[test]
    fn funnel_statements_bind_every_input() {
        let steps = vec![
            Step {
                event: "a'; DROP TABLE events; --".into(),
                filters: vec![PropertyFilter {
                    path: vec!["plan".into()],
                    json: "\"x'y\"".into(),
                }],
            },
            step("b"),
            step("c"),
        ];
        let funnel = Funnel::new(steps, 1000, 0, 10, Some(vec!["plan".into()])).expect("valid");
        for dialect in [Dialect::Sqlite, Dialect::Postgres] {
            let (sql, params) = funnel.statement(dialect, "src'");
            assert!(!sql.contains("DROP") && !sql.contains("x'y") && !sql.contains("src'"));
            let highest = (1..=params.len())
                .rev()
                .find(|n| sql.contains(&format!("?{n}")));
            assert_eq!(highest, Some(params.len()), "{sql}");
            assert!(sql.contains("f3 AS") && sql.contains("t3 - t2"), "{sql}");
        }
    }

    #[test]
    fn retention_statements_bind_every_input() {
        let r =
            Retention::new("a'".into(), "b'".into(), Period::Day, 3, 0, i64::MAX).expect("valid");
        for (sql, params) in r.statements(Dialect::Sqlite, "src'") {
            assert!(!sql.contains("src'") && !sql.contains("b'"), "{sql}");
            let highest = (1..=params.len())
                .rev()
                .find(|n| sql.contains(&format!("?{n}")));
            assert_eq!(highest, Some(params.len()), "{sql}");
        }
    }

    #[test]
    fn retention_refuses_bad_descriptions() {
        let new = |start: &str, periods, from, to| {
            Retention::new(start.into(), "b".into(), Period::Week, periods, from, to)
        };
        assert_eq!(
            new("", 4, 0, i64::MAX).err(),
            Some(ReportError::EmptyEvent("start_event"))
        );
        assert_eq!(
            new("a", 0, 0, i64::MAX).err(),
            Some(ReportError::Periods(0))
        );
        assert_eq!(
            new("a", MAX_PERIODS + 1, 0, i64::MAX).err(),
            Some(ReportError::Periods(MAX_PERIODS + 1))
        );
        assert!(new("a", 4, 0, WEEK_OFFSET_MS).is_err());
        assert!(new("a", 4, 0, i64::MAX).is_ok());
    }

    #[test]
    fn periods_start_on_utc_days_and_mondays() {
        // 2026-03-04 (a Wednesday) 13:00 UTC.
        let t = 1_772_629_200_000;
        assert_eq!(Period::Day.start(t), 1_772_582_400_000);
        // Monday 2026-03-02.
        assert_eq!(Period::Week.start(t), 1_772_409_600_000);
        assert_eq!(Period::Week.start(1_772_409_600_000), 1_772_409_600_000);
    }

    #[test]
    fn breakdowns_refuse_bad_limits() {
        let new = |limit| Breakdown::new(vec!["path".into()], None, None, 0, 10, limit);
        assert_eq!(new(0).err(), Some(ReportError::Limit(0)));
        assert_eq!(
            new(MAX_ROWS + 1).err(),
            Some(ReportError::Limit(MAX_ROWS + 1))
        );
        assert!(new(10).is_ok());
    }
}
