"""mwaa_ops_history_paused: a scheduled DAG that starts paused; its paused state must survive."""
from datetime import datetime

from airflow import DAG
from airflow.operators.empty import EmptyOperator

with DAG("mwaa_ops_history_paused", schedule="@daily", start_date=datetime(2024, 1, 1), catchup=False,
         is_paused_upon_creation=True, tags=["mwaa-ops-test"]):
    EmptyOperator(task_id="noop")
