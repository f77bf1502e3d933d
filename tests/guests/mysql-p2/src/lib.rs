//! spin-sdk 5 test guest for Spin's MySQL API (`fermyon:spin/mysql@2.0.0`).
//! `POST .../query?address=A` and `.../execute?address=A` run the body (see
//! `rdbms.rs` for its form and the answer's); an error answers 500 with the
//! error the guest got.

#[path = "../../rdbms.rs"]
#[macro_use]
mod rdbms;

use spin_sdk::http::{Request, Response};
use spin_sdk::http_component;
use spin_sdk::mysql::{Connection, ParameterValue};

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
    let (statement, params) = rdbms::split(&body);
    let params: Vec<ParameterValue> = params
        .iter()
        .map(|(kind, v)| rdbms_param!(ParameterValue, kind.as_str(), v))
        .collect();
    let tail = req.path().rsplit('/').next().unwrap_or_default().to_owned();
    let conn = match Connection::open(&address) {
        Ok(conn) => conn,
        Err(e) => return Response::new(500, format!("open: {}", rdbms::show(&e))),
    };
    let result = match tail.as_str() {
        "query" => conn.query(&statement, &params).map(|set| {
            rdbms::rows(
                set.columns.into_iter().map(|c| (c.name, c.data_type)),
                set.rows,
            )
        }),
        "execute" => conn.execute(&statement, &params).map(|()| "ok".to_owned()),
        other => return Response::new(404, format!("no operation {other:?}")),
    };
    match result {
        Ok(answer) => Response::new(200, answer),
        Err(e) => Response::new(500, rdbms::show(&e)),
    }
}
