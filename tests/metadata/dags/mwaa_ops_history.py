"""mwaa_ops_history: test DAG that leaves varied history behind (xcoms, retries, failures,
a mapped task, rendered fields, a dataset event). Used by tests/metadata only."""
from datetime import datetime, timedelta

from airflow import DAG
from airflow.datasets import Dataset
from airflow.operators.bash import BashOperator
from airflow.operators.python import PythonOperator

RESULT = Dataset("s3://mwaa-ops-test/history/result")


def produce(ti=None, dag_run=None, **_):
    ti.xcom_push(key="extra", value={"run": dag_run.run_id, "bytes": "é\u2603"})
    return list(range(3))


def flaky(ti=None, dag_run=None, **_):
    # First try fails, the retry succeeds: task_instance_history / task_fail rows.
    if ti.try_number < 2:
        raise RuntimeError("first try fails on purpose")
    return "recovered"


def doomed(dag_run=None, **_):
    if (dag_run.conf or {}).get("fail"):
        raise ValueError("asked to fail")
    return "fine"


with DAG("mwaa_ops_history", schedule=None, start_date=datetime(2024, 1, 1), catchup=False,
         tags=["mwaa-ops-test", "history"], default_args={"retry_delay": timedelta(seconds=1)}):
    p = PythonOperator(task_id="produce", python_callable=produce, pool="history_pool")
    f = PythonOperator(task_id="flaky", python_callable=flaky, retries=1)
    d = PythonOperator(task_id="doomed", python_callable=doomed, outlets=[RESULT])
    m = BashOperator.partial(task_id="mapped", bash_command="echo item $ITEM").expand(
        env=[{"ITEM": "a"}, {"ITEM": "b"}])
    p >> [f, d, m]
