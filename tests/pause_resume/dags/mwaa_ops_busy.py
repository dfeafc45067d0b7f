"""mwaa_ops_busy: one task that keeps running for a while, so an export has to wait for it
(and, with a short wait timeout, fails). Used by tests/pause_resume only."""
from datetime import datetime

from airflow import DAG
from airflow.operators.bash import BashOperator

with DAG("mwaa_ops_busy", schedule=None, start_date=datetime(2024, 1, 1), catchup=False,
         tags=["mwaa-ops-test"]):
    BashOperator(task_id="sleep", bash_command="sleep 40")
