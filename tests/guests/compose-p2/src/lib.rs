//! Component-dependency test guest: an HTTP handler that runs one batch of
//! events through the `tributary:stage1/transform@0.1.0` import, which only
//! a composed dependency can satisfy.
//!
//! `GET /?names=a,b,c&KEY=VALUE...` makes one `track` event per name, calls
//! `stage1.transform` with every other query pair as a setting, and answers
//! `200` with the names of the events that came back, comma-separated, or
//! `500` with the stage's error.

wit_bindgen::generate!({
    inline: r#"
        package test:compose;

        world main {
            import tributary:stage1/transform@0.1.0;
        }
    "#,
    path: "../../../wit/pipeline",
    world: "test:compose/main",
    generate_all,
});

use spin_sdk::http::{Request, Response};
use spin_sdk::http_component;
use tributary::stage1::transform as stage1;

#[http_component]
fn handle(req: Request) -> Response {
    let mut names = String::new();
    let mut settings = Vec::new();
    for pair in req.query().split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if key == "names" {
            names = value.to_owned();
        } else {
            settings.push((key.to_owned(), value.to_owned()));
        }
    }
    let batch: Vec<stage1::Event> = names
        .split(',')
        .filter(|n| !n.is_empty())
        .enumerate()
        .map(|(i, name)| stage1::Event {
            message_id: format!("m{i}"),
            kind: "track".to_owned(),
            name: Some(name.to_owned()),
            user_id: Some("user".to_owned()),
            anonymous_id: None,
            timestamp_ms: 0,
            properties: "{}".to_owned(),
            context: "{}".to_owned(),
        })
        .collect();
    match stage1::transform(&batch, &settings) {
        Ok(out) => {
            let names: Vec<String> = out.events.into_iter().filter_map(|e| e.name).collect();
            Response::new(200, names.join(","))
        }
        Err(e) => Response::new(500, e),
    }
}
