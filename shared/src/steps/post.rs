//! What a post step did with one document (every write goes through `steps::write`).

use std::time::Duration;

pub use super::write::{CLAIM_LEASE, CrashPoint};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PostOutcome {
    Posted {
        id: String,
        number: String,
    },
    /// Found posted already (earlier attempt, or a repeat delivery): nothing done.
    AlreadyPosted {
        id: String,
        number: String,
    },
    /// The target refused the document (bad vendor, G/L account, dimension): parked with its
    /// words.
    Parked(String),
    /// Claimed by another worker; retry after its lease.
    Busy {
        owner: String,
        retry_in: Duration,
    },
    /// An earlier create's outcome is unknown and the target may still commit it: look again
    /// later, never create a second one meanwhile.
    Unsettled {
        retry_in: Duration,
    },
}
