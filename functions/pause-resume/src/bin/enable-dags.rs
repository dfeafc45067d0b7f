//! enable-dags: unpauses the DAGs that were active before the pause.

use pause_resume::dags::enable_dags;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    pause_resume::serve("enable-dags", |aws, invocation| async move {
        enable_dags(&aws.mwaa, invocation.payload).await
    })
    .await
}
