//! Listener actions (`[[action]]` tables): what to run when a message matches,
//! as chains of steps (http, exec, publish, mirror). Library side only: the
//! listener loop that calls it lives in `crate::listen`.

pub mod http;
