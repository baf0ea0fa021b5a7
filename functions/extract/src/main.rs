//! Lambda `reviews-extract`: configuration and clients once per cold start, then the runtime.

use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use reviews_extract_function::ExtractFunction;

#[tokio::main]
async fn main() -> Result<(), Error> {
    reviews_lambda::init_logging();
    let function = ExtractFunction::from_env().await?;
    let function = &function;
    run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            function.handle(event.payload).await
        },
    ))
    .await
}
