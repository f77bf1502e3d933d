//! Spin's outbound MQTT API (`fermyon:spin/mqtt@2.0.0` for spin-sdk 5,
//! `spin:mqtt/mqtt@3.0.0` for spin-sdk 7) against the machine's real
//! Mosquitto, through the `mqtt-p2` and `mqtt-p3` guests; what the guests
//! publish is received by a subscriber of the test's own.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use rumqttc::{Client, Event, MqttOptions, Packet, Publish, QoS};

use crate::support::{AppDir, Trib, backend_available, build_wasm, repo_root, shared_cache};

const SERVER: &str = "127.0.0.1:1883";
/// A password the tests give `open`: it must never be shown.
const PASSWORD: &str = "hunter2-mqtt-secret";

const APP: &str = r#"
spin_manifest_version = 2
[application]
name = "mqtt-api"
[variables]
mqtt_host = { default = "127.0.0.1:1883" }
[[trigger.http]]
route = "/p2/..."
component = "p2"
[[trigger.http]]
route = "/p3/..."
component = "p3"
[component.p2]
source = "{mqtt_p2}"
allowed_outbound_hosts = ["mqtt://{{ mqtt_host }}", "mqtt://127.0.0.1:{down}"]
[component.p3]
source = "{mqtt_p3}"
allowed_outbound_hosts = ["mqtt://{{ mqtt_host }}", "mqtt://127.0.0.1:{down}"]
"#;

/// The two guests, built once per test process.
fn mqtt_guests() -> &'static (PathBuf, PathBuf) {
    static GUESTS: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    GUESTS.get_or_init(|| {
        let dir = repo_root().join("tests/guests");
        (build_wasm(&dir, "mqtt-p2"), build_wasm(&dir, "mqtt-p3"))
    })
}

fn start(down: u16) -> (AppDir, Trib) {
    let (p2, p3) = mqtt_guests();
    let app = AppDir::new(
        &APP.replace("{mqtt_p2}", &p2.display().to_string())
            .replace("{mqtt_p3}", &p3.display().to_string())
            .replace("{down}", &down.to_string()),
    );
    let trib = Trib::start_with(&app, &shared_cache(), &[]);
    (app, trib)
}

/// Something no other test or run uses.
fn unique(test: &str) -> String {
    crate::support::unique_name(test, '-')
}

/// `s` escaped for a query value.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The guest path that publishes `payload` on `topic` through `address`.
fn publish_path(generation: &str, address: &str, topic: &str, payload: &str, qos: u8) -> String {
    format!(
        "/{generation}/publish?address={}&user=trib&password={}&topic={}&payload={}&qos={qos}",
        encode(address),
        encode(PASSWORD),
        encode(topic),
        encode(payload)
    )
}

/// A subscriber of the test's own to `filter` (QoS 2), subscribed when
/// this returns; messages arrive on the receiver.
fn subscribe(filter: &str) -> Receiver<Publish> {
    let mut options = MqttOptions::new(unique("trib-it-sub"), "127.0.0.1", 1883);
    options.set_keep_alive(Duration::from_secs(30));
    let (client, mut connection) = Client::new(options, 64);
    client
        .subscribe(filter, QoS::ExactlyOnce)
        .expect("subscribe request");
    let (tx, rx) = std::sync::mpsc::channel();
    let (subscribed_tx, subscribed) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        // The client lives as long as the connection is driven.
        let _client = client;
        for event in connection.iter() {
            match event {
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    let _ = subscribed_tx.send(());
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    if tx.send(p).is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(_) => return,
            }
        }
    });
    subscribed
        .recv_timeout(Duration::from_secs(10))
        .expect("the test's subscriber is subscribed");
    rx
}

/// The next message, waiting at most 10 s.
fn next(rx: &Receiver<Publish>, what: &str) -> Publish {
    let deadline = Instant::now() + Duration::from_secs(10);
    match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        Ok(p) => p,
        Err(RecvTimeoutError::Timeout) => panic!("{what}: no message within 10 s"),
        Err(RecvTimeoutError::Disconnected) => panic!("{what}: the subscriber stopped"),
    }
}

#[test]
fn guests_publish_at_every_qos_in_both_generations() {
    if !backend_available("Mosquitto", SERVER) {
        return;
    }
    let (_app, trib) = start(crate::support::closed_port());
    let base = format!("trib-it/{}", unique("publish"));
    let rx = subscribe(&format!("{base}/#"));
    for generation in ["p2", "p3"] {
        for (qos, want) in [
            (0, QoS::AtMostOnce),
            (1, QoS::AtLeastOnce),
            (2, QoS::ExactlyOnce),
        ] {
            let topic = format!("{base}/{generation}/q{qos}");
            let payload = format!("hello from {generation} at QoS {qos}");
            let address = format!(
                "mqtt://127.0.0.1:1883?client_id={}",
                unique(&format!("trib-{generation}-{qos}"))
            );
            assert_eq!(
                trib.get(&publish_path(generation, &address, &topic, &payload, qos)),
                (200, "open = ok\npublish = ok".to_owned()),
                "{generation} QoS {qos}"
            );
            let message = next(&rx, &topic);
            assert_eq!(message.topic, topic);
            assert_eq!(message.payload.as_ref(), payload.as_bytes());
            assert_eq!(message.qos, want, "{topic}");
        }
    }
    assert!(
        !trib.log().contains(PASSWORD),
        "the password reached the log"
    );
}

#[test]
fn denied_unparseable_and_unreachable_addresses_are_spins_errors() {
    let down = crate::support::closed_port();
    let (_app, trib) = start(down);
    for generation in ["p2", "p3"] {
        let publish = |address: &str| {
            let (status, body) = trib.get(&publish_path(generation, address, "t", "x", 1));
            assert_eq!(status, 200, "{body}");
            assert!(!body.contains(PASSWORD), "{body}");
            body
        };
        assert_eq!(
            publish("mqtt://127.0.0.1:1884?client_id=a"),
            "open = connection-failed: address mqtt://127.0.0.1:1884?client_id=a is not permitted"
        );
        assert_eq!(
            publish(&format!("mqtt://app:{PASSWORD}@10.9.8.7:1883?client_id=a")),
            "open = connection-failed: address mqtt://10.9.8.7:1883?client_id=a is not permitted"
        );
        for address in [
            "mqtt://127.0.0.1:1883",
            "not-an-address",
            "redis://127.0.0.1:1883?client_id=a",
        ] {
            assert_eq!(
                publish(address),
                "open = invalid-address",
                "{generation} {address}"
            );
        }
        // Allowed, but nothing listens: `open` succeeds (it connects
        // lazily, as Spin's does) and `publish` is `connection-failed`
        // naming the address, as an error, not a trap.
        let address = format!("mqtt://127.0.0.1:{down}?client_id=down");
        let body = publish(&address);
        assert!(
            body.starts_with(&format!(
                "open = ok\npublish = connection-failed: {address}: "
            )),
            "{generation}: {body}"
        );
    }
    let log = trib.log();
    assert!(
        log.contains("address mqtt://10.9.8.7:1883?client_id=a is not permitted"),
        "{log}"
    );
    assert!(!log.contains(PASSWORD), "the password reached the log");
}
