//! spin-sdk 5 test guest for Spin's older PostgreSQL APIs:
//! `POST .../pg/query?address=A` (and `.../pg/execute`) use
//! `fermyon:spin/postgres@2.0.0` (the SDK's `pg`), `.../pg3/...` use
//! `spin:postgres/postgres@3.0.0` (`pg3`). Bodies and answers as in
//! `rdbms.rs`; `pg3` has no unsigned parameters, and takes `date:Y-M-D`.

#[path = "../../rdbms.rs"]
#[macro_use]
mod rdbms;

use spin_sdk::http::{Request, Response};
use spin_sdk::http_component;

#[http_component]
fn handle(req: Request) -> Response {
    let address = req
        .query()
        .split('&')
        .find_map(|pair| pair.strip_prefix("address="))
        .unwrap_or_default()
        .replace("%3F", "?")
        .replace("%3D", "=")
        .replace("%26", "&");
    let body = String::from_utf8_lossy(req.body()).into_owned();
    let mut parts = req.path().rsplit('/');
    let op = parts.next().unwrap_or_default().to_owned();
    let api = parts.next().unwrap_or_default().to_owned();
    let result = match api.as_str() {
        "pg" => pg2(&address, &op, &body),
        "pg3" => pg3(&address, &op, &body),
        other => Err(format!("no interface {other:?}")),
    };
    match result {
        Ok(answer) => Response::new(200, answer),
        Err(e) => Response::new(500, e),
    }
}

fn pg2(address: &str, op: &str, body: &str) -> Result<String, String> {
    use spin_sdk::pg::{Connection, ParameterValue};
    let (statement, params) = rdbms::split(body);
    let params: Vec<ParameterValue> = params
        .iter()
        .map(|(kind, v)| rdbms_param!(ParameterValue, kind.as_str(), v))
        .collect();
    let conn = Connection::open(address).map_err(|e| format!("open: {}", rdbms::show(&e)))?;
    match op {
        "query" => conn.query(&statement, &params).map(|set| {
            rdbms::rows(
                set.columns.into_iter().map(|c| (c.name, c.data_type)),
                set.rows,
            )
        }),
        "execute" => conn
            .execute(&statement, &params)
            .map(|n| format!("rows={n}")),
        other => return Err(format!("no operation {other:?}")),
    }
    .map_err(|e| rdbms::show(&e))
}

fn pg3(address: &str, op: &str, body: &str) -> Result<String, String> {
    use spin_sdk::pg3::{Connection, ParameterValue as P};
    let (statement, params) = rdbms::split(body);
    let params: Vec<P> = params
        .iter()
        .map(|(kind, v)| match kind.as_str() {
            "bool" => P::Boolean(v == "true"),
            "i16" => P::Int16(v.parse().unwrap_or_default()),
            "i32" => P::Int32(v.parse().unwrap_or_default()),
            "i64" => P::Int64(v.parse().unwrap_or_default()),
            "f64" => P::Floating64(v.parse().unwrap_or_default()),
            "str" => P::Str(v.clone()),
            "bin" => P::Binary(rdbms::unhex(v)),
            "date" => {
                let p: Vec<&str> = v.split('-').collect();
                let at = |i: usize| p.get(i).copied().unwrap_or_default();
                P::Date((
                    at(0).parse().unwrap_or_default(),
                    at(1).parse().unwrap_or_default(),
                    at(2).parse().unwrap_or_default(),
                ))
            }
            _ => P::DbNull,
        })
        .collect();
    let conn = Connection::open(address).map_err(|e| format!("open: {}", rdbms::show(&e)))?;
    match op {
        "query" => conn.query(&statement, &params).map(|set| {
            rdbms::rows(
                set.columns.into_iter().map(|c| (c.name, c.data_type)),
                set.rows,
            )
        }),
        "execute" => conn
            .execute(&statement, &params)
            .map(|n| format!("rows={n}")),
        other => return Err(format!("no operation {other:?}")),
    }
    .map_err(|e| rdbms::show(&e))
}
