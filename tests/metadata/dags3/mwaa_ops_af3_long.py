"""A DAG whose id is too long for an InvokeRestApi path (/dags/<id> > 64 characters): created
paused, switched on by the test, so both the export and the import must PATCH it another way."""
from datetime import datetime

from airflow.sdk import DAG
from airflow.providers.standard.operators.empty import EmptyOperator

DAG_ID = "mwaa_ops_af3_long_" + "id_past_the_invoke_rest_api_path_limit_of_64"

with DAG(DAG_ID, schedule=None, start_date=datetime(2024, 1, 1), catchup=False,
         is_paused_upon_creation=True, tags=["mwaa-ops-test"]):
    EmptyOperator(task_id="noop")
