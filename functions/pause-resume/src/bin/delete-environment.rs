//! delete-environment: `{"environment"}` -> deleted, or already gone.

use pause_resume::environment::delete_environment;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let aws = &pause_resume::init().await;
    pause_resume::serve("delete-environment", |event| {
        delete_environment(&aws.mwaa, event)
    })
    .await
}
