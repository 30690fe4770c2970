//! Lambda: the scheduled poll of one integration (EventBridge) → ingest queue.
use lambda_runtime::{Error, LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    mlc_lambda::init_tracing();
    // Built once per execution environment; every invocation borrows the current context
    // (rebuilt when the configuration changed, checked once per MLC_SECRET_TTL_SECS).
    let live = &mlc_lambda::LiveContext::from_env().await?;
    lambda_runtime::run(service_fn(
        |event: LambdaEvent<serde_json::Value>| async move {
            let ctx = live.current().await;
            mlc_lambda::poller::handle(&ctx, event.payload)
                .await
                .map_err(Error::from)
        },
    ))
    .await
}
