//! Local simulators of the two external systems the connector talks to:
//! Coupa (source of approved supplier invoices) and Dynamics 365 Business Central
//! (target, where they become posted purchase invoices).
//!
//! Both simulators follow the fact sheets in `shared/apis/` (`coupa.md`,
//! `business-central.md`). Where a fact is unknown they choose the stricter behaviour,
//! so a connector that passes against them should not be surprised by the real systems.

pub mod b1;
pub mod basware;
pub mod bc;
pub mod concur;
pub mod coupa;
pub mod demo;
pub mod faults;
pub mod fo;
pub mod moto;
pub mod scenarios;

mod query;
mod ratelimit;
mod reqlog;
mod server;

pub use faults::{FaultKind, FaultRule};
pub use reqlog::{CLIENT_GONE, RequestLog, SentInsideWait, sent_inside_announced_waits};
