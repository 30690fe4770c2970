//! What a post step did with one document (every write goes through `steps::write`).

pub use super::claim::CLAIM_LEASE;
pub use super::write::{CrashPoint, PostOutcome};
