//! A small blocking STOMP 1.2 client on std::net, made for short-lived
//! publishers such as hooks: [`frame`] and [`decode`] are the codec going out
//! and coming in, [`connection`] one time-bounded connection (reached by
//! `dial`: TCP under `timed`, or [`tls`] over it), [`batch`] what the broker said
//! about each message of a batch, [`client`] receipted, failover-aware
//! publishing and STOMP as a [`crate::bus::Bus`], [`subscriber`] the long-lived receiving side ([`group`]: one
//! subscription shared by several subscribers; [`product`]: what differs
//! between brokers); [`url`] and
//! [`settings`] say where to, and [`userinfo`] keeps passcodes out of messages.

pub mod batch;
pub mod client;
pub mod connection;
pub mod decode;
mod dial;
mod error;
pub mod frame;
pub mod group;
pub mod product;
mod queue_type;
pub mod settings;
pub mod subscriber;
mod timed;
pub mod tls;
pub mod url;
pub mod userinfo;

pub use client::Client;
pub use connection::StompError;
pub use settings::BrokerSettings;
pub use url::BrokerUrl;
