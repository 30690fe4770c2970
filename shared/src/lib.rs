//! ml-connector's shared library: the canonical model, the ports, the external systems, the
//! pipeline steps and the adapters that both runtimes (embedded `mlc`, AWS Lambda) wire together.
//!
//! Boundaries: `systems` know nothing of queues or stores; `steps` know the ports, never an
//! adapter; `adapters` implement the ports.

pub mod adapters;
pub mod config;
pub mod digest;
pub mod flows;
pub mod model;
pub mod ports;
pub mod runtime;
pub mod steps;
pub mod systems;
pub mod text;
