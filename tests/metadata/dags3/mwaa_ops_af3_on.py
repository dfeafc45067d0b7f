"""mwaa_ops_af3_on: created paused, switched on by the test: the import must switch it on."""
from datetime import datetime

from airflow.sdk import DAG
from airflow.providers.standard.operators.empty import EmptyOperator

with DAG("mwaa_ops_af3_on", schedule=None, start_date=datetime(2024, 1, 1), catchup=False,
         is_paused_upon_creation=True, tags=["mwaa-ops-test"]):
    EmptyOperator(task_id="noop")
