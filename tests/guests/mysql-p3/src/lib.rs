//! spin-sdk 7 test guest for Spin's MySQL API (`spin:mysql/mysql@3.0.0`,
//! whose functions are `async`): the same paths and answers as the
//! spin-sdk 5 guest, the rows read off the stream.

#[path = "../../rdbms.rs"]
#[macro_use]
mod rdbms;

use spin_sdk::http::{FullBody, IntoResponse, Request, Response, box_body};
use spin_sdk::http_service;
use spin_sdk::mysql::{Connection, ParameterValue};

#[http_service]
async fn handle(req: Request) -> anyhow::Result<impl IntoResponse> {
    let address = req
        .uri()
        .query()
        .unwrap_or_default()
        .split('&')
        .find_map(|pair| pair.strip_prefix("address="))
        .unwrap_or_default()
        .replace("%3F", "?")
        .replace("%3D", "=")
        .replace("%26", "&");
    let tail = req
        .uri()
        .path()
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_owned();
    let body = http_body_util::BodyExt::collect(req.into_body())
        .await?
        .to_bytes();
    let body = String::from_utf8_lossy(&body).into_owned();
    let (status, answer) = run(&address, &tail, &body).await;
    let mut resp = Response::new(box_body(FullBody::new(bytes::Bytes::from(answer))));
    *resp.status_mut() = spin_sdk::http::StatusCode::from_u16(status)?;
    Ok(resp)
}

async fn run(address: &str, tail: &str, body: &str) -> (u16, String) {
    let (statement, params) = rdbms::split(body);
    let params: Vec<ParameterValue> = params
        .iter()
        .map(|(kind, v)| rdbms_param!(ParameterValue, kind.as_str(), v))
        .collect();
    let conn = match Connection::open(address).await {
        Ok(conn) => conn,
        Err(e) => return (500, format!("open: {}", show_error(e))),
    };
    match tail {
        "query" => match conn.query(statement, params).await {
            Ok(result) => {
                let (columns, mut stream, done) = result.into_inner();
                let mut rows = Vec::new();
                while let Some(row) = stream.next().await {
                    rows.push(row);
                }
                match done.await {
                    Ok(()) => (
                        200,
                        rdbms::rows(columns.into_iter().map(|c| (c.name, c.data_type)), rows),
                    ),
                    Err(e) => (500, rdbms::show(&e)),
                }
            }
            Err(e) => (500, show_error(e)),
        },
        "execute" => match conn.execute(statement, params).await {
            Ok(()) => (200, "ok".to_owned()),
            Err(e) => (500, show_error(e)),
        },
        other => (404, format!("no operation {other:?}")),
    }
}

/// The WIT error the host gave, as the spin-sdk 5 guest prints it.
fn show_error(e: spin_sdk::mysql::Error) -> String {
    match e {
        spin_sdk::mysql::Error::MysqlError(e) => rdbms::show(&e),
        other => format!("{other}"),
    }
}
