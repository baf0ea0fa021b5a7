//! Lambda `reviews-erase`: configuration and clients once per cold start, then the runtime.

// The MongoDB driver's futures nest deeply: the async main needs more than the default 128.
#![recursion_limit = "256"]
use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use reviews_erase_function::EraseFunction;

#[tokio::main]
async fn main() -> Result<(), Error> {
    reviews_lambda::init_logging();
    let function = EraseFunction::from_env().await?;
    let function = &function;
    run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            function.handle(event.payload).await
        },
    ))
    .await
}
