"""mwaa_ops_deferred: a task that defers until a file exists (the run's conf "release" names it),
for the metadata round trip of a task deferred at export time. Used by tests/metadata only.

`execute` keeps a value of its own (XCom "started"), hands it to the resumption through
next_kwargs and appends it to "<release>.executions"; `resume` writes what it got back to
"<release>.result" (and returns it). So the test tells a resumption (one execution, the exported
values come back) from a restart (a second execution, a new value). The trigger carries a secret
in its kwargs, which Airflow encrypts with the Fernet key from 2.9 on."""
import asyncio
import json
import os
import uuid
from datetime import datetime

from airflow import DAG
from airflow.models.baseoperator import BaseOperator
from airflow.triggers.base import BaseTrigger, TriggerEvent

TOKEN = "trigger-t0ken-4d8e"  # tests/metadata/metadata_bed.py SECRETS: never in plaintext in an export


class ReleaseTrigger(BaseTrigger):
    """Fires once the file at `path` exists (the test creates it when the task may go on)."""

    def __init__(self, path: str, token: str, poll: float = 1.0):
        super().__init__()
        self.path, self.token, self.poll = path, token, poll

    def serialize(self):
        return "mwaa_ops_deferred.ReleaseTrigger", {"path": self.path, "token": self.token, "poll": self.poll}

    async def run(self):
        while not os.path.exists(self.path):
            await asyncio.sleep(self.poll)
        yield TriggerEvent({"released": os.path.basename(self.path), "token_ok": self.token == TOKEN})


class WaitForRelease(BaseOperator):
    def execute(self, context):
        started, release = str(uuid.uuid4()), context["dag_run"].conf["release"]
        context["ti"].xcom_push(key="started", value=started)
        with open(release + ".executions", "a") as f:
            f.write(started + "\n")
        self.defer(trigger=ReleaseTrigger(release, TOKEN), method_name="resume", kwargs={"started": started})

    def resume(self, context, event=None, started=None):
        result = {"event": event, "started_kwarg": started,
                  "started_xcom": context["ti"].xcom_pull(task_ids=self.task_id, key="started")}
        with open(context["dag_run"].conf["release"] + ".result", "w") as f:
            json.dump(result, f)
        return result


with DAG("mwaa_ops_deferred", schedule=None, start_date=datetime(2024, 1, 1), catchup=False,
         tags=["mwaa-ops-test"]):
    WaitForRelease(task_id="wait")
