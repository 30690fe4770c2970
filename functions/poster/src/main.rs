//! Lambda: post queue → Business Central, exactly once (SQS FIFO batches, partial failures).
use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use mlc_lambda::mlc_shared::ports::QueueName;

#[tokio::main]
async fn main() -> Result<(), Error> {
    mlc_lambda::init_tracing();
    // Built once per execution environment; every invocation borrows it.
    let ctx = &mlc_lambda::Context::from_env().await?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<SqsEvent>| async move {
        Ok::<_, Error>(mlc_lambda::sqs::handle_batch(ctx, QueueName::Post, event.payload).await)
    }))
    .await
}
