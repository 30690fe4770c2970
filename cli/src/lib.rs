//! The `mlc` binary's wiring, as a library so end-to-end tests drive the same code.

pub mod cmd;
pub mod embedded;
pub mod output;
pub mod webhook_server;
