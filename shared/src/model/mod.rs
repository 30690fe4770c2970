//! Canonical documents: what every source is converted to and every target is built from.
//! Money is `rust_decimal` plus an ISO 4217 currency, never floating point.

mod documents;
mod money;
mod sync;

pub use documents::*;
pub use money::{Currency, CurrencyError, Money};
pub use sync::*;
