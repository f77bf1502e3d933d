//! Conversions between Spin's PostgreSQL values and the wire types.
//!
//! Parameters pick their encoding from the type the server inferred for
//! them (a `datetime` bound to a `timestamptz` column is sent as UTC, to a
//! `timestamp` column as a naive time), so a guest never has to know which
//! one a schema used. Results map each column type Spin names to its
//! variant; a type it does not name arrives as `unsupported` with its raw
//! bytes rather than failing the whole query.

#![allow(
    clippy::result_large_err,
    reason = "errors are the WIT type the guest receives; boxing them would only be undone"
)]

use std::error::Error as StdError;
use std::str::FromStr as _;

use bytes::{BufMut as _, BytesMut};
use chrono::{DateTime, Datelike as _, NaiveDate, NaiveDateTime, NaiveTime, Timelike as _, Utc};
use rust_decimal::Decimal;
use tokio_postgres::Row;
use tokio_postgres::types::{FromSql, IsNull, Kind, ToSql, Type, to_sql_checked};

use super::p3::spin::postgres4_2_0::postgres as pg;

type BoxError = Box<dyn StdError + Sync + Send>;

/// A parameter, validated and ready to encode.
#[derive(Debug)]
pub enum Param {
    Bool(bool),
    I8(i8),
    I16(i16),
    I32(i32),
    I64(i64),
    F32(f32),
    F64(f64),
    Str(String),
    Binary(Vec<u8>),
    Date(NaiveDate),
    Time(NaiveTime),
    DateTime(NaiveDateTime),
    Json(serde_json::Value),
    Uuid(uuid::Uuid),
    Decimal(Decimal),
    RangeI32(Range<i32>),
    RangeI64(Range<i64>),
    RangeDecimal(Range<Decimal>),
    ArrayI32(Vec<Option<i32>>),
    ArrayI64(Vec<Option<i64>>),
    ArrayDecimal(Vec<Option<Decimal>>),
    ArrayStr(Vec<Option<String>>),
    Interval(pg::Interval),
    Null,
}

/// One bound of a range as the WIT gives it: `None` is unbounded.
type Bound<T> = Option<(T, pg::RangeBoundKind)>;

/// A range's bounds: `None` is unbounded.
#[derive(Debug, Clone, PartialEq)]
pub struct Range<T> {
    lower: Bound<T>,
    upper: Bound<T>,
}

fn bad(what: &str, e: impl std::fmt::Display) -> pg::Error {
    pg::Error::BadParameter(format!("invalid {what}: {e}"))
}

fn date((y, m, d): (i32, u8, u8)) -> Result<NaiveDate, pg::Error> {
    NaiveDate::from_ymd_opt(y, m.into(), d.into())
        .ok_or_else(|| bad("date", format!("{y}-{m}-{d}")))
}

fn time((h, m, s, ns): (u8, u8, u8, u32)) -> Result<NaiveTime, pg::Error> {
    NaiveTime::from_hms_nano_opt(h.into(), m.into(), s.into(), ns)
        .ok_or_else(|| bad("time", format!("{h}:{m}:{s}.{ns}")))
}

fn decimal(s: &str) -> Result<Decimal, pg::Error> {
    Decimal::from_str(s).map_err(|e| bad("decimal", e))
}

fn range<S, T>(
    bounds: (Bound<S>, Bound<S>),
    convert: impl Fn(S) -> Result<T, pg::Error>,
) -> Result<Range<T>, pg::Error> {
    let bound = |b: Bound<S>| -> Result<_, pg::Error> {
        b.map(|(v, kind)| Ok((convert(v)?, kind))).transpose()
    };
    Ok(Range {
        lower: bound(bounds.0)?,
        upper: bound(bounds.1)?,
    })
}

impl Param {
    /// Validates a guest's parameters.
    pub fn list(values: Vec<pg::ParameterValue>) -> Result<Vec<Param>, pg::Error> {
        values.into_iter().map(Param::try_from).collect()
    }

    /// The form `tokio-postgres` takes.
    pub fn refs(params: &[Param]) -> Vec<&(dyn ToSql + Sync)> {
        params.iter().map(|p| p as &(dyn ToSql + Sync)).collect()
    }
}

impl TryFrom<pg::ParameterValue> for Param {
    type Error = pg::Error;

    fn try_from(v: pg::ParameterValue) -> Result<Self, pg::Error> {
        use pg::ParameterValue as P;
        Ok(match v {
            P::Boolean(b) => Param::Bool(b),
            P::Int8(i) => Param::I8(i),
            P::Int16(i) => Param::I16(i),
            P::Int32(i) => Param::I32(i),
            P::Int64(i) => Param::I64(i),
            P::Floating32(f) => Param::F32(f),
            P::Floating64(f) => Param::F64(f),
            P::Str(s) => Param::Str(s),
            P::Binary(b) => Param::Binary(b),
            P::Date(d) => Param::Date(date(d)?),
            P::Time(t) => Param::Time(time(t)?),
            P::Datetime((y, mo, d, h, mi, s, ns)) => {
                Param::DateTime(NaiveDateTime::new(date((y, mo, d))?, time((h, mi, s, ns))?))
            }
            P::Timestamp(secs) => Param::DateTime(
                DateTime::from_timestamp(secs, 0)
                    .ok_or_else(|| bad("timestamp", secs))?
                    .naive_utc(),
            ),
            P::Uuid(s) => Param::Uuid(uuid::Uuid::parse_str(&s).map_err(|e| bad("uuid", e))?),
            P::Jsonb(bytes) => {
                Param::Json(serde_json::from_slice(&bytes).map_err(|e| bad("jsonb", e))?)
            }
            P::Decimal(s) => Param::Decimal(decimal(&s)?),
            P::RangeInt32(r) => Param::RangeI32(range(r, Ok)?),
            P::RangeInt64(r) => Param::RangeI64(range(r, Ok)?),
            P::RangeDecimal(r) => Param::RangeDecimal(range(r, |s: String| decimal(&s))?),
            P::ArrayInt32(a) => Param::ArrayI32(a),
            P::ArrayInt64(a) => Param::ArrayI64(a),
            P::ArrayDecimal(a) => Param::ArrayDecimal(
                a.into_iter()
                    .map(|d| d.as_deref().map(decimal).transpose())
                    .collect::<Result<_, _>>()?,
            ),
            P::ArrayStr(a) => Param::ArrayStr(a),
            P::Interval(i) => Param::Interval(i),
            P::DbNull => Param::Null,
        })
    }
}

impl ToSql for Param {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        match self {
            Param::Bool(v) => v.to_sql_checked(ty, out),
            Param::I8(v) => v.to_sql_checked(ty, out),
            Param::I16(v) => v.to_sql_checked(ty, out),
            Param::I32(v) => v.to_sql_checked(ty, out),
            Param::I64(v) => v.to_sql_checked(ty, out),
            Param::F32(v) => v.to_sql_checked(ty, out),
            Param::F64(v) => v.to_sql_checked(ty, out),
            Param::Str(v) => v.to_sql_checked(ty, out),
            Param::Binary(v) => v.to_sql_checked(ty, out),
            Param::Date(v) => v.to_sql_checked(ty, out),
            Param::Time(v) => v.to_sql_checked(ty, out),
            Param::DateTime(v) if *ty == Type::TIMESTAMPTZ => v.and_utc().to_sql_checked(ty, out),
            Param::DateTime(v) => v.to_sql_checked(ty, out),
            Param::Json(v) => v.to_sql_checked(ty, out),
            Param::Uuid(v) => v.to_sql_checked(ty, out),
            Param::Decimal(v) => v.to_sql_checked(ty, out),
            Param::RangeI32(r) => encode_range(r, ty, &Type::INT4_RANGE, out),
            Param::RangeI64(r) => encode_range(r, ty, &Type::INT8_RANGE, out),
            Param::RangeDecimal(r) => encode_range(r, ty, &Type::NUM_RANGE, out),
            Param::ArrayI32(v) => v.to_sql_checked(ty, out),
            Param::ArrayI64(v) => v.to_sql_checked(ty, out),
            Param::ArrayDecimal(v) => v.to_sql_checked(ty, out),
            Param::ArrayStr(v) => v.to_sql_checked(ty, out),
            Param::Interval(i) => {
                expect_type(ty, &Type::INTERVAL)?;
                out.put_i64(i.micros);
                out.put_i32(i.days);
                out.put_i32(i.months);
                Ok(IsNull::No)
            }
            Param::Null => Ok(IsNull::Yes),
        }
    }

    /// Each variant checks its own type in `to_sql`.
    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

fn expect_type(ty: &Type, expected: &Type) -> Result<(), BoxError> {
    if ty == expected {
        Ok(())
    } else {
        Err(format!("cannot bind a {expected} parameter to a {ty} value").into())
    }
}

/// Range flags of PostgreSQL's binary format.
const RANGE_EMPTY: u8 = 0x01;
const RANGE_LB_INC: u8 = 0x02;
const RANGE_UB_INC: u8 = 0x04;
const RANGE_LB_INF: u8 = 0x08;
const RANGE_UB_INF: u8 = 0x10;

fn encode_range<T: ToSql>(
    r: &Range<T>,
    ty: &Type,
    expected: &Type,
    out: &mut BytesMut,
) -> Result<IsNull, BoxError> {
    expect_type(ty, expected)?;
    let element = match ty.kind() {
        Kind::Range(element) => element.clone(),
        _ => return Err(format!("{ty} is not a range type").into()),
    };
    let mut flags = 0;
    match &r.lower {
        None => flags |= RANGE_LB_INF,
        Some((_, pg::RangeBoundKind::Inclusive)) => flags |= RANGE_LB_INC,
        Some(_) => {}
    }
    match &r.upper {
        None => flags |= RANGE_UB_INF,
        Some((_, pg::RangeBoundKind::Inclusive)) => flags |= RANGE_UB_INC,
        Some(_) => {}
    }
    out.put_u8(flags);
    for (value, _) in [&r.lower, &r.upper].into_iter().flatten() {
        let at = out.len();
        out.put_i32(0);
        value.to_sql(&element, out)?;
        let len = i32::try_from(out.len() - at - 4)?;
        out[at..at + 4].copy_from_slice(&len.to_be_bytes());
    }
    Ok(IsNull::No)
}

/// A range read off the wire.
struct WireRange<T>(Range<T>);

impl<'a, T: FromSql<'a>> FromSql<'a> for WireRange<T> {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        let Kind::Range(element) = ty.kind() else {
            return Err(format!("{ty} is not a range type").into());
        };
        let (&flags, mut rest) = raw.split_first().ok_or("empty range value")?;
        if flags & RANGE_EMPTY != 0 {
            // (None, None) would read as unbounded: refuse rather than lie.
            return Err("an empty range has no form in Spin's WIT".into());
        }
        let mut bound = |infinite: u8, inclusive: u8| -> Result<_, BoxError> {
            if flags & infinite != 0 {
                return Ok(None);
            }
            let (len, tail) = rest.split_at_checked(4).ok_or("truncated range value")?;
            let len = usize::try_from(i32::from_be_bytes(len.try_into()?))?;
            let (value, tail) = tail.split_at_checked(len).ok_or("truncated range value")?;
            rest = tail;
            let kind = if flags & inclusive != 0 {
                pg::RangeBoundKind::Inclusive
            } else {
                pg::RangeBoundKind::Exclusive
            };
            Ok(Some((T::from_sql(element, value)?, kind)))
        };
        let lower = bound(RANGE_LB_INF, RANGE_LB_INC)?;
        let upper = bound(RANGE_UB_INF, RANGE_UB_INC)?;
        Ok(WireRange(Range { lower, upper }))
    }

    fn accepts(ty: &Type) -> bool {
        matches!(ty.kind(), Kind::Range(_))
    }
}

/// An interval read off the wire.
struct WireInterval(pg::Interval);

impl<'a> FromSql<'a> for WireInterval {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        let raw: [u8; 16] = raw.try_into().map_err(|_| "interval is not 16 bytes")?;
        let (micros, rest) = raw.split_at(8);
        let (days, months) = rest.split_at(4);
        Ok(WireInterval(pg::Interval {
            micros: i64::from_be_bytes(micros.try_into()?),
            days: i32::from_be_bytes(days.try_into()?),
            months: i32::from_be_bytes(months.try_into()?),
        }))
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::INTERVAL
    }
}

/// Any value's raw bytes, for types Spin does not name.
struct Raw(Vec<u8>);

impl<'a> FromSql<'a> for Raw {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        Ok(Raw(raw.to_vec()))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

/// Spin's name for a column type.
pub fn data_type(ty: &Type) -> pg::DbDataType {
    use pg::DbDataType as D;
    match *ty {
        Type::BOOL => D::Boolean,
        Type::CHAR => D::Int8,
        Type::INT2 => D::Int16,
        Type::INT4 => D::Int32,
        Type::INT8 => D::Int64,
        Type::FLOAT4 => D::Floating32,
        Type::FLOAT8 => D::Floating64,
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME => D::Str,
        Type::BYTEA => D::Binary,
        Type::DATE => D::Date,
        Type::TIME => D::Time,
        Type::TIMESTAMP | Type::TIMESTAMPTZ => D::Datetime,
        Type::UUID => D::Uuid,
        Type::JSON | Type::JSONB => D::Jsonb,
        Type::NUMERIC => D::Decimal,
        Type::INT4_RANGE => D::RangeInt32,
        Type::INT8_RANGE => D::RangeInt64,
        Type::NUM_RANGE => D::RangeDecimal,
        Type::INT4_ARRAY => D::ArrayInt32,
        Type::INT8_ARRAY => D::ArrayInt64,
        Type::NUMERIC_ARRAY => D::ArrayDecimal,
        Type::TEXT_ARRAY | Type::VARCHAR_ARRAY => D::ArrayStr,
        Type::INTERVAL => D::Interval,
        _ => D::Other(ty.name().to_owned()),
    }
}

/// A result column.
pub fn column(c: &tokio_postgres::Column) -> pg::Column {
    pg::Column {
        name: c.name().to_owned(),
        data_type: data_type(c.type_()),
    }
}

/// A result row, column by column.
pub fn decode_row(row: &Row) -> Result<pg::Row, pg::Error> {
    (0..row.len()).map(|i| decode(row, i)).collect()
}

fn decode(row: &Row, i: usize) -> Result<pg::DbValue, pg::Error> {
    use pg::DbValue as V;
    let ty = row.columns()[i].type_().clone();
    let failed = |e: tokio_postgres::Error| {
        pg::Error::ValueConversionFailed(format!("column {}: {e}", row.columns()[i].name()))
    };
    macro_rules! get {
        ($t:ty, $wrap:expr) => {
            row.try_get::<_, Option<$t>>(i)
                .map_err(failed)?
                .map_or(V::DbNull, $wrap)
        };
    }
    let decimal_string = |d: Decimal| d.to_string();
    let date_tuple = |d: NaiveDate| (d.year(), d.month() as u8, d.day() as u8);
    let time_tuple = |t: NaiveTime| {
        (
            t.hour() as u8,
            t.minute() as u8,
            t.second() as u8,
            t.nanosecond(),
        )
    };
    let datetime = |dt: NaiveDateTime| {
        let (y, mo, d) = date_tuple(dt.date());
        let (h, mi, s, ns) = time_tuple(dt.time());
        V::Datetime((y, mo, d, h, mi, s, ns))
    };
    let bounds = |r: Range<Decimal>| {
        let b = |x: Option<(Decimal, pg::RangeBoundKind)>| x.map(|(v, k)| (v.to_string(), k));
        (b(r.lower), b(r.upper))
    };
    Ok(match ty {
        Type::BOOL => get!(bool, V::Boolean),
        Type::CHAR => get!(i8, V::Int8),
        Type::INT2 => get!(i16, V::Int16),
        Type::INT4 => get!(i32, V::Int32),
        Type::INT8 => get!(i64, V::Int64),
        Type::FLOAT4 => get!(f32, V::Floating32),
        Type::FLOAT8 => get!(f64, V::Floating64),
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME => get!(String, V::Str),
        Type::BYTEA => get!(Vec<u8>, V::Binary),
        Type::DATE => get!(NaiveDate, |d| V::Date(date_tuple(d))),
        Type::TIME => get!(NaiveTime, |t| V::Time(time_tuple(t))),
        Type::TIMESTAMP => get!(NaiveDateTime, datetime),
        Type::TIMESTAMPTZ => get!(DateTime<Utc>, |t| datetime(t.naive_utc())),
        Type::UUID => get!(uuid::Uuid, |u| V::Uuid(u.to_string())),
        Type::JSON | Type::JSONB => get!(serde_json::Value, |j| V::Jsonb(
            serde_json::to_vec(&j).unwrap_or_default()
        )),
        Type::NUMERIC => get!(Decimal, |d| V::Decimal(decimal_string(d))),
        Type::INT4_RANGE => get!(WireRange<i32>, |r| V::RangeInt32((r.0.lower, r.0.upper))),
        Type::INT8_RANGE => get!(WireRange<i64>, |r| V::RangeInt64((r.0.lower, r.0.upper))),
        Type::NUM_RANGE => get!(WireRange<Decimal>, |r| V::RangeDecimal(bounds(r.0))),
        Type::INT4_ARRAY => get!(Vec<Option<i32>>, V::ArrayInt32),
        Type::INT8_ARRAY => get!(Vec<Option<i64>>, V::ArrayInt64),
        Type::NUMERIC_ARRAY => get!(Vec<Option<Decimal>>, |a| V::ArrayDecimal(
            a.into_iter().map(|d| d.map(decimal_string)).collect()
        )),
        Type::TEXT_ARRAY | Type::VARCHAR_ARRAY => get!(Vec<Option<String>>, V::ArrayStr),
        Type::INTERVAL => get!(WireInterval, |i| V::Interval(i.0)),
        _ => get!(Raw, |r| V::Unsupported(r.0)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_validated_before_any_round_trip() {
        use pg::ParameterValue as P;
        assert!(Param::try_from(P::Date((2026, 2, 30))).is_err());
        assert!(Param::try_from(P::Uuid("nope".into())).is_err());
        assert!(Param::try_from(P::Jsonb(b"{".to_vec())).is_err());
        assert!(Param::try_from(P::Decimal("1.5x".into())).is_err());
        assert!(matches!(
            Param::try_from(P::Timestamp(0)),
            Ok(Param::DateTime(dt)) if dt.and_utc().timestamp() == 0
        ));
    }

    #[test]
    fn ranges_round_trip_through_the_binary_format() {
        let r = Range {
            lower: Some((3i32, pg::RangeBoundKind::Inclusive)),
            upper: Some((9i32, pg::RangeBoundKind::Exclusive)),
        };
        let mut out = BytesMut::new();
        encode_range(&r, &Type::INT4_RANGE, &Type::INT4_RANGE, &mut out).expect("encodes");
        let back = WireRange::<i32>::from_sql(&Type::INT4_RANGE, &out).expect("decodes");
        assert_eq!(back.0, r);
        let unbounded = Range::<i64> {
            lower: None,
            upper: Some((5, pg::RangeBoundKind::Inclusive)),
        };
        let mut out = BytesMut::new();
        encode_range(&unbounded, &Type::INT8_RANGE, &Type::INT8_RANGE, &mut out).expect("encodes");
        let back = WireRange::<i64>::from_sql(&Type::INT8_RANGE, &out).expect("decodes");
        assert_eq!(back.0, unbounded);
    }
}
