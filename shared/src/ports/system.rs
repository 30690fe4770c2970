//! What steps know of an external system's failures: one error type every client maps its own
//! failures to, so a step decides retry, park, poison or back-off without knowing the system.

use std::time::Duration;

/// How a call to an external system failed, in the terms a step decides on.
#[derive(Debug, thiserror::Error)]
pub enum SystemError {
    /// The system refused the request and the same request will be refused again (bad data, a
    /// business rule, a stale entity tag is NOT this: see `Conflict`). A person must act.
    #[error("{message}")]
    Rejected {
        status: Option<u16>,
        message: String,
    },
    /// Someone changed the record since we read it (HTTP 409/412 on a conditional write):
    /// read again and decide again.
    #[error("{0}")]
    Conflict(String),
    /// The system does not have what was asked for.
    #[error("{0}")]
    NotFound(String),
    /// A write may have taken effect although the answer was a failure (timeout, broken
    /// connection, 5xx). `may_still_commit`: the server may still be working on it (a timeout,
    /// a gateway that gave up), so looking right now cannot settle whether it happened.
    #[error("{message}")]
    MayHaveSucceeded {
        message: String,
        may_still_commit: bool,
        retry_after: Option<Duration>,
    },
    /// Not now: try again later, no earlier than `retry_after` when the server said so.
    #[error("{message}")]
    Transient {
        message: String,
        retry_after: Option<Duration>,
    },
    /// Our credentials were refused (token request refused, a revoked refresh token, a failed
    /// login, 401 after a fresh token, 403): nothing this integration sends can succeed until
    /// a person fixes the credentials or permissions.
    #[error("{0}")]
    Unauthorized(String),
    /// The system answered something we cannot read.
    #[error("{0}")]
    Malformed(String),
}

impl SystemError {
    /// The server's own delay, when it gave one.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            SystemError::Transient { retry_after, .. }
            | SystemError::MayHaveSucceeded { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    pub fn is_rejection(&self) -> bool {
        matches!(self, SystemError::Rejected { .. })
    }

    pub fn may_have_succeeded(&self) -> bool {
        matches!(self, SystemError::MayHaveSucceeded { .. })
    }

    pub fn may_still_commit(&self) -> bool {
        matches!(
            self,
            SystemError::MayHaveSucceeded {
                may_still_commit: true,
                ..
            }
        )
    }
}
