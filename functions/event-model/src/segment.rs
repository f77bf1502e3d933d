//! Segment's rules for one message, independent of HTTP and storage: the
//! one conversion from a Segment message to an [`Event`], used by the
//! ingest service and by `trib transform run` alike, so they never
//! disagree.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::{Event, Received};

/// Segment's limit for one message, in bytes of JSON.
pub const MAX_EVENT_BYTES: usize = 32 * 1024;
/// Segment's limit for one request, in bytes (after decompression).
pub const MAX_REQUEST_BYTES: usize = 500 * 1024;
/// Segment's limit for messages in one batch.
pub const MAX_BATCH_EVENTS: usize = 2500;

/// The message types of the Tracking API.
pub const TYPES: [&str; 6] = ["track", "identify", "page", "screen", "group", "alias"];

/// Why a message is refused: a machine code and a sentence naming the field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    /// `missing_field`, `invalid_field`, `too_large`...
    pub code: &'static str,
    /// What is wrong, naming the field.
    pub message: String,
}

impl Invalid {
    fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

/// Checks one message of type `kind` (from the URL, or the message's own
/// `type` in a batch). `sent_at` is the batch-level `sentAt` if any;
/// `received_ms` is when the request arrived. The event comes with the
/// message's JSON text, as ingest stores it.
pub fn check(
    message: &Value,
    kind: Option<&str>,
    sent_at: Option<&str>,
    received_ms: i64,
) -> Result<Received, Invalid> {
    let raw = json_text(message);
    if raw.len() > MAX_EVENT_BYTES {
        return Err(Invalid::new(
            "too_large",
            format!(
                "message is {} bytes; the limit is {MAX_EVENT_BYTES}",
                raw.len()
            ),
        ));
    }
    let obj = message
        .as_object()
        .ok_or_else(|| Invalid::new("invalid_field", "message must be a JSON object"))?;
    let kind = match (kind, string(obj, "type")?) {
        (Some(k), _) => k.to_owned(),
        (None, Some(t)) if TYPES.contains(&t.as_str()) => t,
        (None, Some(t)) => {
            return Err(Invalid::new(
                "invalid_field",
                format!("type {t:?} is not one of {}", TYPES.join(", ")),
            ));
        }
        (None, None) => return Err(Invalid::new("missing_field", "type is required in a batch")),
    };
    let user_id = string(obj, "userId")?;
    let anonymous_id = string(obj, "anonymousId")?;
    if user_id.is_none() && anonymous_id.is_none() {
        return Err(Invalid::new(
            "missing_field",
            "userId or anonymousId is required",
        ));
    }
    let name = match kind.as_str() {
        "track" => Some(
            string(obj, "event")?
                .filter(|e| !e.is_empty())
                .ok_or_else(|| Invalid::new("missing_field", "event is required for track"))?,
        ),
        "page" | "screen" => string(obj, "name")?,
        "group" => {
            string(obj, "groupId")?
                .ok_or_else(|| Invalid::new("missing_field", "groupId is required for group"))?;
            None
        }
        "alias" => {
            string(obj, "previousId")?
                .ok_or_else(|| Invalid::new("missing_field", "previousId is required for alias"))?;
            if user_id.is_none() {
                return Err(Invalid::new(
                    "missing_field",
                    "userId is required for alias",
                ));
            }
            None
        }
        _ => None,
    };
    let message_id = match string(obj, "messageId")?.filter(|m| !m.is_empty()) {
        Some(id) => id,
        None => generated_message_id()?,
    };
    let properties_key = properties_key(&kind);
    let properties = match obj.get(properties_key) {
        None | Some(Value::Null) => "{}".to_owned(),
        Some(v @ Value::Object(_)) => json_text(v),
        Some(_) => {
            return Err(Invalid::new(
                "invalid_field",
                format!("{properties_key} must be an object"),
            ));
        }
    };
    let context = match obj.get("context") {
        None | Some(Value::Null) => "{}".to_owned(),
        Some(v @ Value::Object(_)) => json_text(v),
        Some(_) => return Err(Invalid::new("invalid_field", "context must be an object")),
    };
    let timestamp_ms = corrected_timestamp(obj, sent_at, received_ms)?;
    Ok(Received {
        event: Event {
            kind,
            message_id,
            name,
            user_id,
            anonymous_id,
            timestamp_ms,
            properties,
            context,
        },
        raw,
    })
}

/// The message field the event's `properties` come from: Segment calls
/// them `traits` in `identify` and `group`.
pub(crate) fn properties_key(kind: &str) -> &'static str {
    if matches!(kind, "identify" | "group") {
        "traits"
    } else {
        "properties"
    }
}

/// An id for a message that came without one (Segment's HTTP API makes
/// `messageId` optional): `api-` and a random UUID v4, so it never collides
/// with another message and such messages are never deduplicated.
fn generated_message_id() -> Result<String, Invalid> {
    let mut b = [0u8; 16];
    // On wasm32-wasip2 this is `wasi:random`, which cannot fail.
    getrandom::fill(&mut b)
        .map_err(|e| Invalid::new("internal", format!("cannot generate a messageId: {e}")))?;
    b[6] = (b[6] & 0x0f) | 0x40; // version 4
    b[8] = (b[8] & 0x3f) | 0x80; // RFC 9562 variant
    let hex = |bytes: &[u8]| bytes.iter().map(|x| format!("{x:02x}")).collect::<String>();
    Ok(format!(
        "api-{}-{}-{}-{}-{}",
        hex(&b[..4]),
        hex(&b[4..6]),
        hex(&b[6..8]),
        hex(&b[8..10]),
        hex(&b[10..])
    ))
}

/// Segment's clock-skew correction: with `sentAt`, the event happened
/// `sentAt - timestamp` before the request arrived (by the server's clock);
/// without it, the client's timestamp is used; without either, arrival time.
fn corrected_timestamp(
    obj: &Map<String, Value>,
    batch_sent_at: Option<&str>,
    received_ms: i64,
) -> Result<i64, Invalid> {
    let client = match string(obj, "timestamp")?.or(string(obj, "originalTimestamp")?) {
        Some(t) => Some(parse_time("timestamp", &t)?),
        None => None,
    };
    let sent_at = match string(obj, "sentAt")?.as_deref().or(batch_sent_at) {
        Some(t) => Some(parse_time("sentAt", t)?),
        None => None,
    };
    Ok(match (client, sent_at) {
        (Some(ts), Some(sent)) => received_ms - (sent - ts),
        (Some(ts), None) => ts,
        (None, _) => received_ms,
    })
}

fn parse_time(field: &str, value: &str) -> Result<i64, Invalid> {
    DateTime::parse_from_rfc3339(value)
        .map(|t| t.with_timezone(&Utc).timestamp_millis())
        .map_err(|_| {
            Invalid::new(
                "invalid_field",
                format!("{field} {value:?} is not an ISO 8601 time"),
            )
        })
}

fn string(obj: &Map<String, Value>, key: &str) -> Result<Option<String>, Invalid> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        // Segment accepts numeric ids and stores them as strings.
        Some(Value::Number(n)) if key.ends_with("Id") => Ok(Some(n.to_string())),
        Some(_) => Err(Invalid::new(
            "invalid_field",
            format!("{key} must be a string"),
        )),
    }
}

/// A JSON value's text. `serde_json::to_string` writes straight into a
/// buffer; `Value`'s `Display` goes through the formatter, which costs
/// several times more per event in a busy batch.
pub fn json_text(value: &Value) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

/// What of an invalid message is kept as its dead letter: everything but
/// the payload objects (`properties`, `traits`, `context`), which are
/// replaced by a note of their size. The message never reached the
/// transforms, so keeping its payload would store what the chain exists to
/// redact.
pub fn envelope(message: &Value) -> Value {
    let Value::Object(fields) = message else {
        return Value::String(format!(
            "[withheld: a {} byte non-object message]",
            json_text(message).len()
        ));
    };
    Value::Object(
        fields
            .iter()
            .map(|(key, value)| match key.as_str() {
                "properties" | "traits" | "context" => (
                    key.clone(),
                    Value::String(format!(
                        "[withheld: {} bytes; the message did not reach the transforms]",
                        json_text(value).len()
                    )),
                ),
                _ => (key.clone(), value.clone()),
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dead_letters_of_invalid_messages_keep_no_payload() {
        let message = serde_json::json!({
            "type": "track", "messageId": "m1",
            "properties": {"email": "a@b.c"}, "context": {"ip": "1.2.3.4"},
        });
        let kept = json_text(&envelope(&message));
        assert!(kept.contains("\"messageId\":\"m1\""), "{kept}");
        assert!(
            !kept.contains("a@b.c") && !kept.contains("1.2.3.4"),
            "{kept}"
        );
        assert!(json_text(&envelope(&serde_json::json!("secret"))).contains("withheld"));
    }
    use serde_json::json;
    use std::panic::{AssertUnwindSafe, catch_unwind};
    use std::time::{Duration, Instant};

    const NOW: i64 = 1_700_000_000_000;

    #[test]
    fn track_needs_an_identity_and_an_event() {
        let ok = json!({"userId": "u1", "event": "Signed Up", "messageId": "m1", "properties": {"plan": "pro"}});
        let event = check(&ok, Some("track"), None, NOW).expect("valid").event;
        assert_eq!(event.name.as_deref(), Some("Signed Up"));
        assert_eq!(event.timestamp_ms, NOW);
        assert_eq!(event.properties, r#"{"plan":"pro"}"#);
        for (bad, message) in [
            (
                json!({"event": "x", "messageId": "m"}),
                "userId or anonymousId is required",
            ),
            (
                json!({"userId": "u", "messageId": "m"}),
                "event is required for track",
            ),
            (
                json!({"userId": true, "event": "x", "messageId": "m"}),
                "userId must be a string",
            ),
            (
                json!({"userId": "u", "event": "x", "messageId": "m", "properties": [1]}),
                "properties must be an object",
            ),
            (
                json!({"userId": "u", "event": "x", "messageId": "m", "timestamp": "yesterday"}),
                "timestamp \"yesterday\" is not an ISO 8601 time",
            ),
        ] {
            assert_eq!(
                check(&bad, Some("track"), None, NOW)
                    .expect_err("invalid")
                    .message,
                message
            );
        }
    }

    /// Issue 10, item 12: Segment's HTTP API treats `messageId` as
    /// optional; a message without one is accepted with a generated id.
    #[test]
    fn a_message_without_a_message_id_gets_a_fresh_generated_one() {
        for message in [
            json!({"userId": "u", "event": "x"}),
            json!({"userId": "u", "event": "x", "messageId": ""}),
            json!({"userId": "u", "event": "x", "messageId": null}),
        ] {
            let first = check(&message, Some("track"), None, NOW)
                .expect("accepted")
                .event;
            let second = check(&message, Some("track"), None, NOW)
                .expect("accepted")
                .event;
            assert!(first.message_id.starts_with("api-"), "{}", first.message_id);
            assert_eq!(first.message_id.len(), "api-".len() + 36);
            assert_ne!(first.message_id, second.message_id, "never deduplicated");
        }
        // A given id is kept as is.
        let given = json!({"userId": "u", "event": "x", "messageId": "m1"});
        assert_eq!(
            check(&given, Some("track"), None, NOW)
                .expect("valid")
                .event
                .message_id,
            "m1"
        );
    }

    #[test]
    fn batches_take_the_type_from_each_message() {
        let alias = json!({"type": "alias", "userId": "u", "previousId": "a", "messageId": "m"});
        assert_eq!(
            check(&alias, None, None, NOW).expect("valid").event.kind,
            "alias"
        );
        let bad = json!({"type": "purchase", "userId": "u", "messageId": "m"});
        assert_eq!(
            check(&bad, None, None, NOW).expect_err("invalid").code,
            "invalid_field"
        );
        let group = json!({"type": "group", "userId": "u", "messageId": "m"});
        assert_eq!(
            check(&group, None, None, NOW).expect_err("invalid").message,
            "groupId is required for group"
        );
    }

    #[test]
    fn clock_skew_is_corrected_with_sent_at() {
        // The client's clock is 1 h fast: it says it sent at 13:00:10 an event
        // from 13:00:00; the server received it at 12:00:10 by its own clock.
        let received = DateTime::parse_from_rfc3339("2026-01-01T12:00:10Z")
            .expect("time")
            .timestamp_millis();
        let msg = json!({"userId": "u", "event": "e", "messageId": "m", "timestamp": "2026-01-01T13:00:00Z"});
        let event = check(&msg, Some("track"), Some("2026-01-01T13:00:10Z"), received)
            .expect("valid")
            .event;
        let expected = DateTime::parse_from_rfc3339("2026-01-01T12:00:00Z")
            .expect("time")
            .timestamp_millis();
        assert_eq!(event.timestamp_ms, expected);
    }

    use fastrand::Rng;

    const FIELDS: &[&str] = &[
        "type",
        "messageId",
        "userId",
        "anonymousId",
        "event",
        "name",
        "groupId",
        "previousId",
        "properties",
        "traits",
        "context",
        "timestamp",
        "originalTimestamp",
        "sentAt",
    ];

    /// A value of any JSON shape, biased to what breaks parsers: huge and
    /// extreme numbers, multi-byte text, broken escapes and odd times.
    fn odd_value(rng: &mut Rng) -> Value {
        match rng.usize(..16) {
            0 => Value::Null,
            1 => json!(rng.usize(..2) == 0),
            2 => json!(u64::MAX),
            3 => json!(i64::MIN),
            4 => json!(1e308),
            5 => json!(-0.0),
            6 => json!(""),
            7 => json!("€".repeat(1 + rng.usize(..40))),
            8 => json!("%a€%C3%zz\\u0000\\0"),
            9 => json!(["x", 1, null]),
            10 => json!({"a": {"b": {"c": [1, {"d": "é"}]}}}),
            11 => json!("x".repeat(MAX_EVENT_BYTES)),
            12 => json!(
                [
                    "2026-13-45T25:61:61Z",
                    "9999-12-31T23:59:59.999999999+23:59",
                    "0000-01-01T00:00:00-23:59",
                    "2026-01-01T00:00:00Z",
                    "2026-01-01",
                    "1700000000000",
                ][rng.usize(..6)]
            ),
            13 => json!(TYPES[rng.usize(..TYPES.len())]),
            14 => json!({"email": "a@b.c", "n": 99_999_999_999_999_999_999.0}),
            _ => json!("u"),
        }
    }

    /// A seed message with fields replaced, removed or added, or its JSON
    /// text with bytes flipped or inserted (when that still parses).
    fn mutated(rng: &mut Rng, seeds: &[Value]) -> Value {
        let mut message = seeds[rng.usize(..seeds.len())].clone();
        for _ in 0..=rng.usize(..3) {
            let field = FIELDS[rng.usize(..FIELDS.len())];
            match (rng.usize(..5), message.as_object_mut()) {
                (0, Some(obj)) => {
                    obj.remove(field);
                }
                (1..=3, Some(obj)) => {
                    obj.insert(field.to_owned(), odd_value(rng));
                }
                _ => {
                    let mut text = json_text(&message).into_bytes();
                    let at = rng.usize(..text.len() + 1);
                    let insert: &[u8] = match rng.usize(..5) {
                        0 => b"%",
                        1 => "€".as_bytes(),
                        2 => b"99999999999999999999",
                        3 => b"\\u00e9",
                        _ => &[0xff],
                    };
                    if rng.usize(..2) == 0 && at < text.len() {
                        text[at] ^= 1 << rng.usize(..8);
                    } else {
                        text.splice(at..at, insert.iter().copied());
                    }
                    if let Ok(v) = serde_json::from_slice(&text) {
                        message = v;
                    }
                }
            }
        }
        message
    }

    /// Issue 10: randomized messages (seeded with `fastrand`, about a second) never panic
    /// validation; a refusal is a known code with a message, and an accepted
    /// event has what storage and the transforms rely on.
    #[test]
    fn fuzz_message_validation() {
        let seeds = [
            json!({"type": "track", "userId": "u1", "event": "Order Completed", "messageId": "m1",
                   "properties": {"total": 3, "email": "a@b.c"}, "context": {"ip": "1.2.3.4"},
                   "timestamp": "2026-01-01T12:00:00Z", "sentAt": "2026-01-01T12:00:05Z"}),
            json!({"type": "identify", "anonymousId": "a1", "traits": {"plan": "pro"}}),
            json!({"type": "page", "userId": "u1", "name": "Home", "messageId": 42}),
            json!({"type": "group", "userId": "u1", "groupId": "g1", "traits": {}}),
            json!({"type": "alias", "userId": "u1", "previousId": "a1", "messageId": "m5"}),
            json!({"userId": "u1", "event": "x"}),
        ];
        let sent_at = [
            None,
            Some("2026-01-01T12:00:05Z"),
            Some("not a time"),
            Some("€%"),
        ];
        let mut rng = Rng::with_seed(0xf00d_5eed);
        let deadline = Instant::now() + Duration::from_millis(1200);
        let mut tried = 0;
        while tried < 200_000 && Instant::now() < deadline {
            let message = mutated(&mut rng, &seeds);
            let kind = (rng.usize(..2) == 0).then(|| TYPES[rng.usize(..TYPES.len())]);
            let sent = sent_at[rng.usize(..sent_at.len())];
            let received = NOW + rng.usize(..1_000_000) as i64;
            let outcome = catch_unwind(AssertUnwindSafe(|| {
                (check(&message, kind, sent, received), envelope(&message))
            }));
            let Ok((result, kept)) = outcome else {
                panic!("message {message} (kind {kind:?}, sentAt {sent:?}) panicked");
            };
            assert!(!json_text(&kept).is_empty());
            match result {
                Err(Invalid { code, message: why }) => {
                    assert!(
                        ["too_large", "invalid_field", "missing_field"].contains(&code),
                        "{message}: code {code}"
                    );
                    assert!(!why.is_empty(), "{message}: empty reason");
                }
                Ok(Received { event, raw }) => {
                    assert!(!event.message_id.is_empty(), "{message}");
                    assert!(TYPES.contains(&event.kind.as_str()), "{message}");
                    for text in [&event.properties, &event.context] {
                        let parsed: Value = serde_json::from_str(text).expect("JSON text");
                        assert!(parsed.is_object(), "{message}: {text}");
                    }
                    assert!(raw.len() <= MAX_EVENT_BYTES, "{message}");
                }
            }
            tried += 1;
        }
        assert!(tried > 1000, "only {tried} inputs in the time budget");
        eprintln!("fuzz_message_validation: {tried} inputs");
    }

    #[test]
    fn oversized_messages_are_refused() {
        let big = json!({"userId": "u", "event": "e", "messageId": "m", "properties": {"blob": "x".repeat(MAX_EVENT_BYTES)}});
        assert_eq!(
            check(&big, Some("track"), None, NOW)
                .expect_err("too big")
                .code,
            "too_large"
        );
    }
}
