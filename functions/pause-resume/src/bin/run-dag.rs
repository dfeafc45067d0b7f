//! run-dag: starts a DAG run that reports to a Step Functions task token.

use pause_resume::dags::run_dag;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    pause_resume::serve("run-dag", |aws, invocation| async move {
        run_dag(&aws.mwaa, invocation.payload).await
    })
    .await
}
