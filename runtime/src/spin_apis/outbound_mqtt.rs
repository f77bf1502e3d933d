//! Spin's outbound MQTT API (`fermyon:spin/mqtt@2.0.0` and
//! `spin:mqtt/mqtt@3.0.0`) on the `rumqttc` crate, as Spin's
//! `factor-outbound-mqtt` builds it; one backend for both generations (the
//! adapters are in `outbound_mqtt_impl.rs`).
//!
//! The address is Spin's: `mqtt://host[:port]?client_id=ID` (port 1883 by
//! default; `keep_alive_secs` and `clean_session` may follow, and
//! `keep-alive-interval-in-secs` of `open` wins over the former). A
//! component may open only addresses its `allowed_outbound_hosts` allow
//! with the address's own scheme (`mqtt://host:port`, checked against the
//! host and port the client would really use); a denied one is
//! `connection-failed` with `address ... is not permitted`, as in Spin, and
//! one warning in the log. An address that does not parse (no
//! `client_id`, another scheme, `mqtts://`, which needs TLS trib does not
//! build in yet) is `invalid-address`.
//!
//! As in Spin, `open` does not touch the network: the client connects on
//! the first `publish`, which waits until the broker has the message (sent
//! at QoS 0, `PUBACK` at 1, `PUBCOMP` at 2). A broker that cannot be
//! reached, or does not answer within [`PUBLISH_TIMEOUT`], is
//! `connection-failed` with the cause; its message stays queued on that
//! connection and goes out when a later publish reaches the broker, as in
//! Spin.
//!
//! The password never reaches a log line, a `Debug` print or an error: it
//! is held only inside the `rumqttc` options, and error texts are scrubbed
//! of it (and of any `user:password@` in the address).

use std::sync::Arc;
use std::time::Duration;

use rumqttc::{AsyncClient, Event, EventLoop, Incoming, MqttOptions, Outgoing, QoS};
use tokio::sync::Mutex;

use crate::allowed_hosts::{AllowedHosts, Destination};

/// How long one `publish` may take, connecting included.
pub const PUBLISH_TIMEOUT: Duration = Duration::from_secs(30);
/// Requests buffered between the client and its event loop (Spin's size).
const CHANNEL_CAPACITY: usize = 1000;

/// Spin's MQTT error cases, for both generations.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MqttError {
    /// An address that does not parse.
    #[error("invalid address")]
    InvalidAddress,
    /// Too many connections are open in this instance.
    #[error("too many connections")]
    TooManyConnections,
    /// A denied address, or a broker that cannot be reached, with why.
    #[error("connection failed: {0}")]
    ConnectionFailed(String),
    /// Anything else, with the cause.
    #[error("{0}")]
    Other(String),
}

/// The delivery guarantee of one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Qos {
    /// Sent once, never acknowledged (QoS 0).
    AtMostOnce,
    /// Acknowledged, may arrive twice (QoS 1).
    AtLeastOnce,
    /// Delivered exactly once (QoS 2).
    ExactlyOnce,
}

impl From<Qos> for QoS {
    fn from(q: Qos) -> Self {
        match q {
            Qos::AtMostOnce => QoS::AtMostOnce,
            Qos::AtLeastOnce => QoS::AtLeastOnce,
            Qos::ExactlyOnce => QoS::ExactlyOnce,
        }
    }
}

/// What one component may reach.
#[derive(Clone)]
pub struct MqttAccess {
    component: Arc<str>,
    allowed: Arc<AllowedHosts>,
}

impl std::fmt::Debug for MqttAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MqttAccess")
            .field("component", &self.component)
            .field("allowed", &self.allowed)
            .finish()
    }
}

impl MqttAccess {
    /// Access for `component` with these allowed hosts.
    pub fn new(component: &str, allowed: Arc<AllowedHosts>) -> Self {
        Self {
            component: component.into(),
            allowed,
        }
    }

    /// A client for `address` if the component may reach it; connects on
    /// the first publish, as Spin does.
    pub fn open(
        &self,
        address: &str,
        username: String,
        password: String,
        keep_alive_secs: u64,
    ) -> Result<Connection, MqttError> {
        let shown = without_userinfo(address);
        let mut options = MqttOptions::parse_url(address).map_err(|e| {
            tracing::warn!(component = %self.component, address = %shown, "MQTT address does not parse: {e}");
            MqttError::InvalidAddress
        })?;
        let scheme = address
            .split_once("://")
            .map(|(s, _)| s.to_ascii_lowercase())
            .unwrap_or_default();
        let (host, port) = options.broker_address();
        let host = host.trim_matches(['[', ']']).to_ascii_lowercase();
        let dest = Destination {
            scheme: &scheme,
            host: &host,
            port,
        };
        if !self.allowed.allows(&dest) {
            tracing::warn!(
                component = %self.component,
                "address {shown} is not permitted: add {dest} to the component's allowed_outbound_hosts"
            );
            return Err(MqttError::ConnectionFailed(format!(
                "address {shown} is not permitted"
            )));
        }
        let secret = if username.is_empty() {
            // Credentials in the address, if any, stay.
            options.credentials().map(|login| login.password)
        } else {
            options.set_credentials(username, password.clone());
            Some(password)
        };
        let keep_alive = Duration::from_secs(keep_alive_secs.min(u64::from(u16::MAX)));
        options.set_keep_alive(keep_alive);
        let (client, event_loop) = AsyncClient::new(options, CHANNEL_CAPACITY);
        Ok(Connection {
            client,
            event_loop: Mutex::new(event_loop),
            shown,
            secret: secret.filter(|p| !p.is_empty()),
        })
    }
}

/// `address` with any `user:password@` taken out, for logs and errors.
fn without_userinfo(address: &str) -> String {
    let Some((scheme, rest)) = address.split_once("://") else {
        return address.to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://{}", &rest[at + 1..]),
        None => address.to_owned(),
    }
}

/// An open guest connection, held in the instance's resource table.
pub struct Connection {
    client: AsyncClient,
    /// Driven only while a publish waits for its message to be through, as
    /// in Spin; one publish at a time.
    event_loop: Mutex<EventLoop>,
    /// The address without credentials.
    shown: String,
    /// The password, only to scrub it from error texts.
    secret: Option<String>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("address", &self.shown)
            .finish_non_exhaustive()
    }
}

/// A connection shared between the table and in-flight async calls.
pub type SharedConnection = Arc<Connection>;

impl Connection {
    /// Publishes `payload` on `topic` and waits until the broker has it.
    pub async fn publish(
        &self,
        topic: String,
        payload: Vec<u8>,
        qos: Qos,
    ) -> Result<(), MqttError> {
        let qos = QoS::from(qos);
        let mut event_loop = self.event_loop.lock().await;
        // Queued without waiting: the queue drains only while this
        // publish polls below, so a full one (messages a down broker never
        // took) would never make room.
        self.client
            .try_publish(topic, qos, false, payload)
            .map_err(|e| MqttError::Other(self.scrub(format!("{}: {e}", self.shown))))?;
        let delivered = async {
            loop {
                let event = event_loop.poll().await.map_err(|e| {
                    MqttError::ConnectionFailed(self.scrub(format!("{}: {e}", self.shown)))
                })?;
                match (qos, event) {
                    (QoS::AtMostOnce, Event::Outgoing(Outgoing::Publish(_)))
                    | (QoS::AtLeastOnce, Event::Incoming(Incoming::PubAck(_)))
                    | (QoS::ExactlyOnce, Event::Incoming(Incoming::PubComp(_))) => {
                        return Ok(());
                    }
                    _ => {}
                }
            }
        };
        match tokio::time::timeout(PUBLISH_TIMEOUT, delivered).await {
            Ok(result) => result,
            Err(_) => Err(MqttError::ConnectionFailed(format!(
                "{}: the broker did not take the message within {} s",
                self.shown,
                PUBLISH_TIMEOUT.as_secs()
            ))),
        }
    }

    fn scrub(&self, text: String) -> String {
        match &self.secret {
            Some(secret) => text.replace(secret.as_str(), "***"),
            None => text,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access(rules: &[&str]) -> MqttAccess {
        MqttAccess::new("test", Arc::new(AllowedHosts::parse(rules).expect("rules")))
    }

    #[test]
    fn addresses_are_checked_before_anything_is_sent() {
        let mqtt = access(&["mqtt://127.0.0.1:1883", "mqtt://broker.test"]);
        let open = |a: &str| mqtt.open(a, "u".into(), "hunter2".into(), 30).err();
        assert_eq!(open("mqtt://127.0.0.1:1883?client_id=a"), None);
        assert_eq!(
            open("mqtt://broker.test?client_id=a"),
            None,
            "port 1883 by default"
        );
        assert_eq!(open("mqtt://BROKER.test:1883?client_id=a"), None);
        assert_eq!(
            open("mqtt://127.0.0.1:1884?client_id=a"),
            Some(MqttError::ConnectionFailed(
                "address mqtt://127.0.0.1:1884?client_id=a is not permitted".into()
            ))
        );
        assert_eq!(
            open("mqtt://app:s3cret@10.0.0.1:1883?client_id=a"),
            Some(MqttError::ConnectionFailed(
                "address mqtt://10.0.0.1:1883?client_id=a is not permitted".into()
            )),
            "credentials in the address are never shown"
        );
        assert_eq!(
            open("tcp://127.0.0.1:1883?client_id=a"),
            Some(MqttError::ConnectionFailed(
                "address tcp://127.0.0.1:1883?client_id=a is not permitted".into()
            )),
            "the address's own scheme is checked"
        );
        for bad in [
            "mqtt://127.0.0.1:1883",
            "not an address",
            "http://127.0.0.1:1883?client_id=a",
            "mqtts://127.0.0.1:8883?client_id=a",
        ] {
            assert_eq!(open(bad), Some(MqttError::InvalidAddress), "{bad}");
        }
    }

    #[test]
    fn the_password_is_in_no_debug_print() {
        let mqtt = access(&["mqtt://127.0.0.1:1883"]);
        let conn = mqtt
            .open(
                "mqtt://127.0.0.1:1883?client_id=dbg",
                "user".into(),
                "hunter2".into(),
                u64::MAX,
            )
            .expect("opens");
        let shown = format!("{conn:?} {mqtt:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert_eq!(
            without_userinfo("mqtt://u:p@w@h:1?client_id=x@y"),
            "mqtt://h:1?client_id=x@y"
        );
    }

    #[tokio::test]
    async fn an_unreachable_broker_is_connection_failed() {
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            listener.local_addr().expect("address").port()
        };
        let mqtt = access(&[&format!("mqtt://127.0.0.1:{port}")]);
        let conn = mqtt
            .open(
                &format!("mqtt://127.0.0.1:{port}?client_id=down"),
                "user".into(),
                "hunter2".into(),
                5,
            )
            .expect("open does not connect");
        let Err(MqttError::ConnectionFailed(message)) = conn
            .publish("t".into(), b"x".to_vec(), Qos::AtLeastOnce)
            .await
        else {
            panic!("publishing to a closed port fails");
        };
        assert!(
            message.starts_with(&format!("mqtt://127.0.0.1:{port}?client_id=down: ")),
            "{message}"
        );
        assert!(!message.contains("hunter2"), "{message}");
    }
}
