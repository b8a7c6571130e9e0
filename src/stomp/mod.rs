//! A small blocking STOMP 1.2 client on std::net, made for short-lived
//! publishers such as hooks: [`frame`] and [`decode`] are the codec going out
//! and coming in, [`connection`] one time-bounded connection (reached by
//! `dial`: TCP under `timed`, or [`tls`] over it), [`batch`] what the broker said
//! about each message of a batch, [`publisher`] receipted, failover-aware
//! publishing, [`subscriber`] the long-lived receiving side ([`group`]: one
//! subscription shared by several subscribers); [`url`] and
//! [`settings`] say where to, and [`userinfo`] keeps passcodes out of messages.

pub mod batch;
pub mod connection;
pub mod decode;
mod dial;
mod error;
pub mod frame;
pub mod group;
pub mod publisher;
mod queue_type;
pub mod settings;
pub mod subscriber;
mod timed;
pub mod tls;
pub mod url;
pub mod userinfo;

pub use batch::{Patience, Verdict};
pub use connection::StompError;
pub use dial::KEEPALIVE_NOTICES_AFTER;
pub use publisher::{Delivery, HostReport, Progress, PublishError, Publisher, Retry};
pub use settings::BrokerSettings;
pub use url::BrokerUrl;
