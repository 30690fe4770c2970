//! Dynamics 365 Business Central API v2.0 (`../shared/apis/business-central.md`): Entra ID client
//! credentials, every call under `companies({id})`, drafts posted with `Microsoft.NAV.post`,
//! paging by `@odata.nextLink`, a request budget per user.

mod batch;
mod client;
mod documents;
mod master_data;
mod orders;
mod subscriptions;
pub mod wire;
mod writers;

pub use batch::MAX_BATCH_OPERATIONS;
pub use client::{BcClient, BcError, BcSettings, DEFAULT_API_URL, SCOPE};
pub use documents::{DocSet, NewDocumentLine, NewPurchaseDocument};
pub use master_data::{MasterData, MasterRecords};
pub use subscriptions::SUBSCRIPTION_LIFETIME;
pub use writers::{CREATE_SETTLE, InvoiceWriter, OrderJob, OrderWriter, VendorWriter};
