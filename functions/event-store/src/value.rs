//! Parameters and results in each backend's value types.

use serde_json::{Value as Json, json};
use spin_sdk::{pg, sqlite};

use crate::{Cell, Param};

impl Param {
    pub(crate) fn into_sqlite(self) -> sqlite::Value {
        match self {
            Param::Int(i) => sqlite::Value::Integer(i),
            Param::Real(f) => sqlite::Value::Real(f),
            Param::Text(s) => sqlite::Value::Text(s),
            Param::Blob(b) => sqlite::Value::Blob(b),
            Param::Null => sqlite::Value::Null,
        }
    }

    pub(crate) fn into_pg(self) -> pg::ParameterValue {
        match self {
            Param::Int(i) => pg::ParameterValue::Int64(i),
            Param::Real(f) => pg::ParameterValue::Floating64(f),
            Param::Text(s) => pg::ParameterValue::Str(s),
            Param::Blob(b) => pg::ParameterValue::Binary(b),
            Param::Null => pg::ParameterValue::DbNull,
        }
    }
}

pub(crate) fn sqlite_json(v: &sqlite::Value) -> Json {
    match v {
        sqlite::Value::Integer(i) => json!(i),
        sqlite::Value::Real(f) => json!(f),
        sqlite::Value::Text(s) => json!(s),
        sqlite::Value::Blob(_) | sqlite::Value::Null => Json::Null,
    }
}

pub(crate) fn pg_json(v: &pg::DbValue) -> Json {
    use pg::DbValue as V;
    match v {
        V::Boolean(b) => json!(b),
        V::Int8(i) => json!(i),
        V::Int16(i) => json!(i),
        V::Int32(i) => json!(i),
        V::Int64(i) => json!(i),
        V::Floating32(f) => json!(f),
        V::Floating64(f) => json!(f),
        V::Str(s) => json!(s),
        V::Jsonb(bytes) => serde_json::from_slice(bytes).unwrap_or(Json::Null),
        V::Decimal(d) => d.parse::<f64>().map_or_else(|_| json!(d), |f| json!(f)),
        V::DbNull => Json::Null,
        other => json!(format!("{other:?}")),
    }
}

pub(crate) fn sqlite_cell(v: sqlite::Value) -> Cell {
    match v {
        sqlite::Value::Integer(i) => Cell::Int(i),
        sqlite::Value::Real(f) => Cell::Real(f),
        sqlite::Value::Text(s) => Cell::Text(s),
        sqlite::Value::Blob(b) => Cell::Blob(b),
        sqlite::Value::Null => Cell::Null,
    }
}

pub(crate) fn pg_cell(v: pg::DbValue) -> Cell {
    use pg::DbValue as V;
    match v {
        V::Int8(i) => Cell::Int(i.into()),
        V::Int16(i) => Cell::Int(i.into()),
        V::Int32(i) => Cell::Int(i.into()),
        V::Int64(i) => Cell::Int(i),
        V::Floating32(f) => Cell::Real(f.into()),
        V::Floating64(f) => Cell::Real(f),
        V::Str(s) => Cell::Text(s),
        V::Binary(b) => Cell::Blob(b),
        _ => Cell::Null,
    }
}
