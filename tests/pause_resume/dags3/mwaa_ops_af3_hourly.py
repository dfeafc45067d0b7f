"""mwaa_ops_af3_hourly: hourly, catchup, its start date 30 days back. Created paused (as MWAA's
default `dags_are_paused_at_creation` has every DAG), switched on by the test: it catches up
on the source; after the resume it must go on from where it stood, not start over."""
from datetime import datetime, timedelta, timezone

from airflow.sdk import DAG
from airflow.providers.standard.operators.empty import EmptyOperator

# Midnight of the day 30 days back: the same start date at every parse of one day.
START = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=30)

with DAG("mwaa_ops_af3_hourly", schedule="@hourly", start_date=START, catchup=True, max_active_runs=4,
         is_paused_upon_creation=True, tags=["mwaa-ops-test"]):
    EmptyOperator(task_id="noop")
