//! environment-status: `{"environment"}` -> `{"environment", "status", ...}`.

use pause_resume::environment::environment_status;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let aws = &pause_resume::init().await;
    pause_resume::serve("environment-status", |event| {
        environment_status(&aws.mwaa, event)
    })
    .await
}
