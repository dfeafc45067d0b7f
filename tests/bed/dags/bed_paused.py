"""bed_paused: a DAG that asks to start paused (runs triggered on it stay queued)."""
from datetime import datetime

try:  # Airflow 3
    from airflow.sdk import DAG
    from airflow.providers.standard.operators.empty import EmptyOperator
except ImportError:  # Airflow 2
    from airflow import DAG
    from airflow.operators.empty import EmptyOperator

with DAG("bed_paused", schedule=None, start_date=datetime(2024, 1, 1), catchup=False,
         is_paused_upon_creation=True, tags=["bed"]):
    EmptyOperator(task_id="noop")
