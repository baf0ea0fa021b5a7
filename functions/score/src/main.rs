//! Lambda `reviews-score`: the lake client and the model session once per cold start, then
//! the runtime.

use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use reviews_score_function::ScoreFunction;

#[tokio::main]
async fn main() -> Result<(), Error> {
    reviews_lambda::init_logging();
    let function = ScoreFunction::from_env().await?;
    let function = &function;
    run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            function.handle(event.payload).await
        },
    ))
    .await
}
