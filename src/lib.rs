//! hookbus: turns git pushes and Subversion commits into messages on STOMP brokers.
//!
//! Data flows one way: input (the [`git`] and [`svn`] sides, opened for a run
//! by [`hook`]) → [`model`] → [`render`] → [`route`] → [`deliver`]; [`emit`] runs
//! the steps after the input side and [`config`] holds what the user configured;
//! [`syslog`] leaves a line per run in the system log; [`saved`] keeps the
//! pushes a hook could not handle (no usable config, nowhere to save or
//! deliver) for `hookbus flush` to run again. At the bottom,
//! [`message`], [`text`], [`secret`], [`naming`] and [`pattern`] serve the rest. [`bus`] is
//! the seam to the broker: delivery, the webhook and the listener use only
//! its [`bus::Publisher`]; [`stomp`] implements it with nothing above the
//! seam, and [`config`] is the one place that chooses it. [`webhook`] is a
//! third input side: forge pushes over
//! HTTP, rendered and delivered through the same steps. [`listen`] is the
//! other end: the deploy-host daemon that subscribes and keeps mirrors up to
//! date; [`inbound`] reads each message it receives, once, for its mirrors and
//! its [`action`]s alike. [`http_server`] is the HTTP core both daemons serve
//! with. The CLI (`src/cli/`) only wires these together.

#![warn(missing_docs)]

pub mod account;
pub mod action;
pub mod assemble;
pub mod bus;
pub mod child;
pub mod config;
pub mod deliver;
pub mod emit;
pub mod fleet;
pub mod git;
pub mod hook;
pub mod http_server;
pub mod inbound;
pub mod install;
pub mod legacy;
pub mod listen;
pub mod message;
pub mod model;
pub mod naming;
pub mod pattern;
pub mod private_file;
pub mod render;
pub mod route;
pub mod saved;
pub mod secret;
pub mod sign;
pub mod stomp;
pub mod svn;
pub mod sync;
pub mod syslog;
pub mod text;
pub mod webhook;
