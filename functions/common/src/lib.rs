//! What the Lambda functions share. Each function's `main.rs` builds a [`LiveContext`] once per
//! execution environment (clients, configuration, secrets cache; rebuilt when the configuration
//! changes, see [`config_source`]) and hands every event, with the current [`Context`], to one
//! handler here. No business logic: the handlers decode the event, call the step in
//! `mlc-shared`, and encode the answer (HTTP status, partial batch failures).

pub mod config_source;
mod context;
pub mod local;
pub mod logs;
pub mod poller;
pub mod sqs;
pub mod webhook;

pub use config_source::LiveContext;
pub use context::{AwsPipeline, Context};
pub use mlc_shared;

/// JSON logs to CloudWatch, one flat object per line (see [`logs`]), levels from `RUST_LOG`
/// (see [`logs::filter`]; default info). Secrets never reach a log:
/// they are `SecretString`, whose formatting is redacted.
pub fn init_tracing() {
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = logs::filter(std::env::var("RUST_LOG").ok().as_deref());
    logs::subscriber(filter, std::io::stdout).init();
}
