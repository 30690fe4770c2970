//! SQLite adapters: the queues, the store (ledger, watermarks, mappings, parking, audit trail)
//! over one SQLite file, and an encrypted local secrets file.

mod clock;
mod db;
mod queue;
mod secrets;
mod store;

pub use clock::ManualClock;
pub use db::{Db, SCHEMA_VERSION};
pub use queue::{QueueSettings, SqliteQueue};
pub use secrets::{SECRET_KEY_ENV, SECRET_KEY_FILE_ENV, SecretFile, SecretKey};
pub use store::SqliteStore;
