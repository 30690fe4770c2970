//! Lambda: the scheduled poll of one integration (EventBridge) → ingest queue.
use lambda_runtime::{Error, LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    mlc_lambda::init_tracing();
    // Built once per execution environment; every invocation borrows it.
    let ctx = &mlc_lambda::Context::from_env().await?;
    lambda_runtime::run(service_fn(
        |event: LambdaEvent<serde_json::Value>| async move {
            mlc_lambda::poller::handle(ctx, event.payload)
                .await
                .map_err(Error::from)
        },
    ))
    .await
}
