//! enable-dags: unpauses the DAGs that were active before the pause.

use pause_resume::dags::enable_dags;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let aws = &pause_resume::init().await;
    pause_resume::serve("enable-dags", |event| enable_dags(&aws.mwaa, event)).await
}
