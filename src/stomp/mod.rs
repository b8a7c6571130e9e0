//! A small blocking STOMP 1.2 client on std::net, made for short-lived
//! publishers such as hooks: [`frame`] is the codec, [`connection`] one
//! time-bounded connection (TCP or [`tls`]), [`publisher`] a receipted,
//! failover-aware publish of a batch; [`url`] and [`settings`] say where to,
//! and [`userinfo`] keeps passcodes out of messages.

pub mod connection;
pub mod frame;
pub mod publisher;
pub mod secret;
pub mod settings;
pub mod tls;
pub mod url;
pub mod userinfo;

pub use connection::StompError;
pub use publisher::{HostReport, PublishError, Publisher, Retry};
pub use secret::Secret;
pub use settings::BrokerSettings;
pub use url::BrokerUrl;
