//! Lambda: webhooks from API Gateway (HTTP API) → verify → ingest queue.
use aws_lambda_events::event::apigw::ApiGatewayV2httpRequest;
use lambda_runtime::{Error, LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    mlc_lambda::init_tracing();
    // Built once per execution environment; every invocation borrows the current context
    // (rebuilt when the configuration changed, checked once per MLC_SECRET_TTL_SECS).
    let live = &mlc_lambda::LiveContext::from_env().await?;
    lambda_runtime::run(service_fn(
        |event: LambdaEvent<ApiGatewayV2httpRequest>| async move {
            let ctx = live.current().await;
            Ok::<_, Error>(mlc_lambda::webhook::handle(&ctx, event.payload).await)
        },
    ))
    .await
}
