//! Lambda `reviews-transform`: the lake client once per cold start, then the runtime.

use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use reviews_transform_function::TransformFunction;

#[tokio::main]
async fn main() -> Result<(), Error> {
    reviews_lambda::init_logging();
    let function = TransformFunction::from_env().await?;
    let function = &function;
    run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            function.handle(event.payload).await
        },
    ))
    .await
}
