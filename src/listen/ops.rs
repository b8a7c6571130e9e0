//! The mirrors' work as their state allows, and how the daemon answers its
//! operators: the [`worker`] pool that runs the engine's updates
//! ([`super::mirror`]) as the mirrors' [`status`] board allows, the
//! [`control`] socket `hookbus ctl` talks to and the work its commands become
//! ([`operate`]), the same commands signed over the bus from `hookbus fleet`
//! ([`remote`]), and [`telemetry`]: [`metrics`] served by the [`exporter`],
//! [`presence`] for `hookbus fleet`.

pub mod control;
pub mod exporter;
pub mod metrics;
pub mod operate;
pub mod presence;
pub mod remote;
pub mod status;
pub mod telemetry;
pub mod worker;
