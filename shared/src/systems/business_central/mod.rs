//! Dynamics 365 Business Central API v2.0 (`../shared/apis/business-central.md`): Entra ID client
//! credentials, every call under `companies({id})`, drafts posted with `Microsoft.NAV.post`,
//! paging by `@odata.nextLink`, a request budget per user.

mod client;
pub mod wire;

pub use client::{BcClient, BcError, BcSettings, DEFAULT_API_URL, SCOPE};
