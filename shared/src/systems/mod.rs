//! The external systems. Each folder holds only what is its own (auth flavour, wire types,
//! conversion to and from the canonical model); the HTTP plumbing they share is in `http`.

pub mod basware;
pub mod business_central;
pub mod concur;
pub mod coupa;
pub mod dynamics_fo;
pub mod http;
mod instances;
pub mod sap_b1;
pub mod signature;
pub mod wire;

pub use instances::{BuildError, Instance, Instances};
