"""bed_smoke: one task that logs the conf its run was given. Parses on Airflow 2.10 and 3.0."""
import json
import logging
from datetime import datetime

try:  # Airflow 3: DAG authoring lives in the task SDK, operators in the standard provider
    from airflow.sdk import DAG
    from airflow.providers.standard.operators.python import PythonOperator
except ImportError:  # Airflow 2
    from airflow import DAG
    from airflow.operators.python import PythonOperator


def log_conf(dag_run=None, **_):
    logging.getLogger(__name__).info("bed_smoke conf: %s", json.dumps(dag_run.conf))


with DAG("bed_smoke", schedule=None, start_date=datetime(2024, 1, 1), catchup=False, tags=["bed"]):
    PythonOperator(task_id="log_conf", python_callable=log_conf)
