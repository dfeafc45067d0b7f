//! delete-environment: `{"environment"}` -> deleted, or already gone.

use pause_resume::environment::delete_environment;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    pause_resume::serve("delete-environment", |aws, invocation| async move {
        delete_environment(&aws.mwaa, invocation.payload).await
    })
    .await
}
