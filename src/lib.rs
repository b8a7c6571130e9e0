//! hookbus: turns git pushes and Subversion commits into messages on STOMP brokers.
//!
//! Data flows one way: input (the [`git`] side) → [`model`] → [`render`] →
//! [`route`] → [`deliver`]. The CLI in `main.rs` only wires these together.

pub mod deliver;
pub mod model;
