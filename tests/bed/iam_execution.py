"""The execution-role policy infra/dags/README.md documents, as the bed holds the export/import
DAGs to it.

The README's JSON block under "IAM for the environment's execution role" is the one source:
``documented_policy`` substitutes ENV, BUCKET, KEY_ARN, REGION and ACCOUNT in its text (the
static check tests/template/test_export_policy.py reads it the same way), ``register`` gives
moto (iam_moto.py) a key holding exactly those statements, and ``register_with`` asks a running
moto for one (``POST /moto-api/bed-iam/execution-roles``). An Airflow of the bed started with
that key (``airflow_bed.Airflow(..., execution_key=KEY)``) runs its DAGs as the environment's
execution role would on MWAA: every S3, KMS, Step Functions, EventBridge and MWAA call of a task
is authorised against the block.
"""
from __future__ import annotations

import json
import re
import urllib.request
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "infra" / "dags" / "README.md"
SECTION = "## IAM for the environment's execution role"


def documented_policy(environment: str, bucket: str, key_arn: str, region: str,
                      account: str) -> dict:
    """The README's policy for ``environment``, its placeholders filled in."""
    text = README.read_text()
    block = re.search(r"```json\n(.*?)```", text[text.index(SECTION):], re.S).group(1)
    for placeholder, value in (("BUCKET", bucket), ("KEY_ARN", key_arn), ("REGION", region),
                               ("ACCOUNT", account), ("ENV", environment)):
        block = block.replace(placeholder, value)
    return json.loads(block)


def role_name(environment: str) -> str:
    return f"{environment}-execution-role"


def register(body: dict, account: str, register_statements) -> dict:
    """A key for ``body`` = {"environment", "bucket", "key_arn", "region"?, "account"?,
    "without": [Sid]?}; ``register_statements`` is iam_moto's (name, statements, account)."""
    account = body.get("account") or account
    statements = documented_policy(body["environment"], body["bucket"], body["key_arn"],
                                   body.get("region") or "us-east-1", account)["Statement"]
    without = set(body.get("without") or [])
    missing = without - {s.get("Sid") for s in statements}
    if missing:
        raise KeyError(f"the documented execution-role policy has no statement {sorted(missing)}")
    kept = [s for s in statements if s.get("Sid") not in without]
    return register_statements(role_name(body["environment"]), kept, account)


def register_with(moto_url: str, environment: str, bucket: str, key_arn: str,
                  region: str = "us-east-1", account: str = "123456789012",
                  without: list[str] | None = None) -> str:
    """Asks the bed's moto for ``environment``'s execution-role key; returns the access key."""
    body = {"environment": environment, "bucket": bucket, "key_arn": key_arn, "region": region,
            "account": account, "without": without or []}
    request = urllib.request.Request(f"{moto_url}/moto-api/bed-iam/execution-roles",
                                     data=json.dumps(body).encode(), method="POST")
    with urllib.request.urlopen(request) as answer:
        return json.loads(answer.read())["access_key"]
