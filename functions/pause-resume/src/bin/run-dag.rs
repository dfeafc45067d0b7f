//! run-dag: starts a DAG run that reports to a Step Functions task token.

use pause_resume::dags::run_dag;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let aws = &pause_resume::init().await;
    pause_resume::serve("run-dag", |event| run_dag(&aws.mwaa, event)).await
}
