//! `fermyon:spin/mqtt@2.0.0` (spin-sdk 5, synchronous functions) and
//! `spin:mqtt/mqtt@3.0.0` (spin-sdk 7, `async func`s) on top of
//! [`super::outbound_mqtt`].

use wasmtime::component::{Accessor, Resource};

use super::outbound_mqtt::{MqttError, Qos, SharedConnection};
use super::p2::fermyon::spin::mqtt as v2;
use super::p3::spin::mqtt::mqtt as v3;
use super::{SpinHost, SpinView};

type Fallible<T, E> = wasmtime::Result<Result<T, E>>;

/// The backend's types in one generation's generated types.
macro_rules! mqtt_conversions {
    ($gen:ident) => {
        impl From<MqttError> for $gen::Error {
            fn from(e: MqttError) -> Self {
                match e {
                    MqttError::InvalidAddress => Self::InvalidAddress,
                    MqttError::TooManyConnections => Self::TooManyConnections,
                    MqttError::ConnectionFailed(m) => Self::ConnectionFailed(m),
                    MqttError::Other(m) => Self::Other(m),
                }
            }
        }

        impl From<$gen::Qos> for Qos {
            fn from(q: $gen::Qos) -> Self {
                match q {
                    $gen::Qos::AtMostOnce => Self::AtMostOnce,
                    $gen::Qos::AtLeastOnce => Self::AtLeastOnce,
                    $gen::Qos::ExactlyOnce => Self::ExactlyOnce,
                }
            }
        }
    };
}

mqtt_conversions!(v2);
mqtt_conversions!(v3);

impl SpinView<'_> {
    fn push_mqtt(
        &mut self,
        conn: SharedConnection,
    ) -> Result<Resource<SharedConnection>, MqttError> {
        self.table
            .push(conn)
            .map_err(|_| MqttError::TooManyConnections)
    }

    fn mqtt_connection(
        &self,
        conn: &Resource<SharedConnection>,
    ) -> Result<SharedConnection, MqttError> {
        self.table
            .get(conn)
            .cloned()
            .map_err(|_| MqttError::Other("could not find connection for resource".into()))
    }
}

impl v2::Host for SpinView<'_> {}

impl v2::HostConnection for SpinView<'_> {
    async fn open(
        &mut self,
        address: String,
        username: String,
        password: String,
        keep_alive_interval_in_secs: u64,
    ) -> Fallible<Resource<SharedConnection>, v2::Error> {
        let conn =
            match self
                .ctx
                .mqtt
                .open(&address, username, password, keep_alive_interval_in_secs)
            {
                Ok(conn) => conn,
                Err(e) => return Ok(Err(e.into())),
            };
        Ok(self.push_mqtt(conn.into()).map_err(Into::into))
    }

    async fn publish(
        &mut self,
        conn: Resource<SharedConnection>,
        topic: String,
        payload: Vec<u8>,
        qos: v2::Qos,
    ) -> Fallible<(), v2::Error> {
        Ok(match self.mqtt_connection(&conn) {
            Ok(c) => c
                .publish(topic, payload, qos.into())
                .await
                .map_err(Into::into),
            Err(e) => Err(e.into()),
        })
    }

    async fn drop(&mut self, conn: Resource<SharedConnection>) -> wasmtime::Result<()> {
        self.table.delete(conn)?;
        Ok(())
    }
}

impl v3::Host for SpinView<'_> {}

impl v3::HostConnection for SpinView<'_> {
    async fn drop(&mut self, conn: Resource<SharedConnection>) -> wasmtime::Result<()> {
        self.table.delete(conn)?;
        Ok(())
    }
}

impl<T> v3::HostConnectionWithStore<T> for SpinHost {
    async fn open(
        accessor: &Accessor<T, Self>,
        address: String,
        username: String,
        password: String,
        keep_alive_interval_in_secs: u64,
    ) -> Fallible<Resource<SharedConnection>, v3::Error> {
        let access = accessor.with(|mut a| a.get().ctx.mqtt.clone());
        let conn = match access.open(&address, username, password, keep_alive_interval_in_secs) {
            Ok(conn) => conn,
            Err(e) => return Ok(Err(e.into())),
        };
        Ok(accessor.with(|mut a| a.get().push_mqtt(conn.into()).map_err(Into::into)))
    }

    async fn publish(
        accessor: &Accessor<T, Self>,
        conn: Resource<SharedConnection>,
        topic: String,
        payload: Vec<u8>,
        qos: v3::Qos,
    ) -> Fallible<(), v3::Error> {
        let conn = accessor.with(|mut a| a.get().mqtt_connection(&conn));
        Ok(match conn {
            Ok(c) => c
                .publish(topic, payload, qos.into())
                .await
                .map_err(Into::into),
            Err(e) => Err(e.into()),
        })
    }
}
