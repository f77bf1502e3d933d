//! The statements the data functions run on the `events` table that other
//! code runs too: the benchmark (`bench/src/data.rs`) runs these same
//! texts natively, so what it measures is what the functions do. Plain
//! Rust with no Spin dependency, so the bench can use it (feature `spin`
//! off).

use crate::Param;

/// Events per `INSERT`: one statement stores many rows (one round trip to
/// the host instead of one per event); 500 rows of 10 parameters stay well
/// under both SQLite's and PostgreSQL's parameter limits.
pub const ROWS_PER_INSERT: usize = 500;

/// Columns of an `events` row, in [`insert_events`] order: `source`,
/// `message_id`, `type`, `name`, `user_id`, `anonymous_id`,
/// `timestamp_ms`, `received_at_ms`, `properties`, `raw`.
pub const EVENT_COLUMNS: usize = 10;

/// `INSERT` of `rows` events; a row whose message id the source already
/// has is skipped, so the statement's change count is what was new.
/// Placeholders are positional (`?`): the store numbers them for
/// PostgreSQL.
pub fn insert_events(rows: usize) -> String {
    const ROW: &str = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
    let mut sql = String::with_capacity(200 + rows * (ROW.len() + 2));
    sql.push_str(
        "INSERT INTO events (source, message_id, type, name, user_id, anonymous_id, timestamp_ms, received_at_ms, properties, raw) VALUES ",
    );
    for row in 0..rows {
        if row > 0 {
            sql.push_str(", ");
        }
        sql.push_str(ROW);
    }
    sql.push_str(" ON CONFLICT (source, message_id) DO NOTHING");
    sql
}

/// [`insert_events`] returning, for each row actually inserted (never a
/// skipped duplicate), the columns the rollups need: `name`, the user
/// (`COALESCE(user_id, anonymous_id)`) and `timestamp_ms`. SQLite (3.35+)
/// and PostgreSQL both support `RETURNING`.
pub fn insert_events_returning(rows: usize) -> String {
    let mut sql = insert_events(rows);
    sql.push_str(" RETURNING name, COALESCE(user_id, anonymous_id), timestamp_ms");
    sql
}

/// `INSERT` of one dead letter: `?1` source, `?2` received at (ms), `?3`
/// code, `?4` reason, `?5` the message kept.
pub const INSERT_DEAD_LETTER: &str = "INSERT INTO dead_letters (source, received_at_ms, code, reason, raw) VALUES (?1, ?2, ?3, ?4, ?5)";

/// The `group` of [`counts`] when the counts are not grouped.
pub const NO_GROUP: &str = "CAST(NULL AS TEXT)";

/// The query API's counts over time: events and unique users per bucket
/// (and group), as columns `bucket`, `grp`, count, unique users. `?1` is
/// the source, `?2` the bucket width in ms, `?3`/`?4` the window (from
/// inclusive, to exclusive); `group` is the SQL expression grouped by
/// ([`NO_GROUP`] for none), and `name_param` the placeholder number of an
/// event-name filter, if any.
pub fn counts(group: &str, name_param: Option<usize>) -> String {
    let mut sql = format!(
        "SELECT (timestamp_ms / ?2) * ?2 AS bucket, {group} AS grp, count(*), count(DISTINCT COALESCE(user_id, anonymous_id)) FROM events WHERE source = ?1 AND timestamp_ms >= ?3 AND timestamp_ms < ?4"
    );
    if let Some(param) = name_param {
        sql.push_str(&format!(" AND name = ?{param}"));
    }
    sql.push_str(" GROUP BY bucket, grp ORDER BY bucket, grp");
    sql
}

/// Which events a listing reads: one source's, or only those of it with
/// one event name. A typed filter rather than SQL text, so callers never
/// write a condition of their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventFilter<'a> {
    /// The source whose events are read.
    pub source: &'a str,
    /// Only events with this name (`event` of track, `name` of page and
    /// screen), if given.
    pub name: Option<&'a str>,
}

impl EventFilter<'_> {
    /// The `WHERE` condition and its parameters, numbered from `?1`.
    pub fn condition(&self) -> (String, Vec<Param>) {
        let mut condition = "source = ?1".to_owned();
        let mut params = vec![Param::Text(self.source.to_owned())];
        if let Some(name) = self.name {
            condition.push_str(" AND name = ?2");
            params.push(Param::Text(name.to_owned()));
        }
        (condition, params)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_insert_has_a_row_of_parameters_per_event() {
        let sql = insert_events(2);
        assert_eq!(sql.matches('?').count(), 2 * EVENT_COLUMNS);
        assert!(sql.ends_with("?, ?) ON CONFLICT (source, message_id) DO NOTHING"));
        assert!(insert_events_returning(2).starts_with(&sql));
    }

    #[test]
    fn counts_filter_by_name_only_when_asked() {
        let plain = counts(NO_GROUP, None);
        assert!(plain.contains("CAST(NULL AS TEXT) AS grp"), "{plain}");
        assert!(!plain.contains("name ="), "{plain}");
        let named = counts("name", Some(5));
        assert!(named.contains(" AND name = ?5 GROUP BY"), "{named}");
    }

    #[test]
    fn filters_bind_what_they_compare() {
        let all = EventFilter {
            source: "dev",
            name: None,
        };
        assert_eq!(
            all.condition(),
            ("source = ?1".to_owned(), vec![Param::Text("dev".into())])
        );
        let named = EventFilter {
            name: Some("a'b"),
            ..all
        };
        assert_eq!(
            named.condition(),
            (
                "source = ?1 AND name = ?2".to_owned(),
                vec![Param::Text("dev".into()), Param::Text("a'b".into())]
            )
        );
    }
}
