"""The execution-role policy infra/dags/README.md documents keeps each environment to its own
exports and data keys. The policy is evaluated here for the requests the DAGs make (and the ones
DAG code in another environment would make), by the rules of IAM that it uses: Allow statements
matched by action, resource (wildcards) and conditions (StringEquals, StringLike,
ForAllValues:StringEquals, Null); no statement matching is an implicit deny."""
import fnmatch

import pytest

import iam_execution

BUCKET, KEY = "suite-bucket", "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def documented_policy(environment: str) -> dict:
    """The README's JSON block under "IAM for the environment's execution role", for `environment`
    (read as the bed reads it to hold the DAGs to it)."""
    return iam_execution.documented_policy(environment, BUCKET, KEY, "eu-west-1", "123456789012")


def _listed(value):
    return value if isinstance(value, list) else [value]


def _condition_holds(operator: str, key: str, wanted, context: dict) -> bool:
    if operator == "Null":
        return (key not in context) == (wanted == "true")
    if operator.startswith("ForAllValues:"):
        test = operator.split(":", 1)[1]
        return all(_condition_holds(test, key, wanted, {key: v}) for v in _listed(context.get(key, [])))
    if key not in context:
        return False
    match = {"StringEquals": lambda v, w: v == w,
             "StringLike": lambda v, w: fnmatch.fnmatchcase(v, w)}[operator]
    return any(match(context[key], w) for w in _listed(wanted))


def allowed(policy: dict, action: str, resource: str, context: dict | None = None) -> bool:
    context = context or {}
    for statement in policy["Statement"]:
        assert statement["Effect"] == "Allow"
        if not any(fnmatch.fnmatchcase(action, a) for a in _listed(statement["Action"])):
            continue
        if not any(fnmatch.fnmatchcase(resource, r) for r in _listed(statement["Resource"])):
            continue
        if all(_condition_holds(op, key, wanted, context)
               for op, keys in statement.get("Condition", {}).items() for key, wanted in keys.items()):
            return True
    return False


def data_key_context(environment, export_id="e-1"):
    context = {"mwaa-ops:environment": environment, "mwaa-ops:export-id": export_id}
    return {**{f"kms:EncryptionContext:{k}": v for k, v in context.items()},
            "kms:EncryptionContextKeys": sorted(context)}


S3_SEALED = {"kms:ViaService": "s3.eu-west-1.amazonaws.com",
             "kms:EncryptionContext:aws:s3:arn": f"arn:aws:s3:::{BUCKET}",
             "kms:EncryptionContextKeys": ["aws:s3:arn"]}


def object_arn(environment, name="dt=2026-11-30/20261130T010203Z/manifest.json"):
    return f"arn:aws:s3:::{BUCKET}/metadata/{environment}/{name}"


@pytest.fixture(scope="module")
def env_a():
    return documented_policy("env-a")


def test_an_environment_may_write_and_read_its_own_exports_and_data_keys(env_a):
    for action in ("s3:PutObject", "s3:GetObject", "s3:GetObjectVersion"):
        assert allowed(env_a, action, object_arn("env-a")), action
    assert allowed(env_a, "s3:ListBucket", f"arn:aws:s3:::{BUCKET}", {"s3:prefix": "metadata/env-a/dt="})
    for action in ("kms:GenerateDataKey", "kms:Decrypt"):
        assert allowed(env_a, action, KEY, data_key_context("env-a")), action
        assert allowed(env_a, action, KEY, S3_SEALED), f"{action} through S3"
    for action in ("states:SendTaskSuccess", "states:SendTaskFailure", "states:SendTaskHeartbeat"):
        assert allowed(env_a, action, "*"), action
    assert allowed(env_a, "events:PutEvents", "arn:aws:events:eu-west-1:123456789012:event-bus/default")
    assert allowed(env_a, "airflow:InvokeRestApi", "arn:aws:airflow:eu-west-1:123456789012:role/env-a/Op")


def test_an_environment_can_neither_read_nor_replace_another_environments_export(env_a):
    for action in ("s3:PutObject", "s3:GetObject", "s3:GetObjectVersion", "s3:DeleteObject"):
        assert not allowed(env_a, action, object_arn("env-b")), action
        assert not allowed(env_a, action, f"arn:aws:s3:::{BUCKET}/snapshots/env-b/latest.json"), action
        assert not allowed(env_a, action, f"arn:aws:s3:::{BUCKET}/metadata/env-ab/x"), action
    assert not allowed(env_a, "s3:ListBucket", f"arn:aws:s3:::{BUCKET}", {"s3:prefix": "metadata/env-b/"})
    assert not allowed(env_a, "s3:ListBucket", f"arn:aws:s3:::{BUCKET}", {})
    for role in ("role/env-b/Op", "role/env-a/Admin", "role/env-ab/Op"):
        assert not allowed(env_a, "airflow:InvokeRestApi", f"arn:aws:airflow:eu-west-1:123456789012:{role}"), role


def test_an_environment_cannot_open_another_environments_data_key(env_a):
    for action in ("kms:Decrypt", "kms:GenerateDataKey"):
        assert not allowed(env_a, action, KEY, data_key_context("env-b")), action
        assert not allowed(env_a, action, KEY, {}), f"{action} without a context"
        extra = data_key_context("env-a")
        extra["kms:EncryptionContextKeys"] = [*extra["kms:EncryptionContextKeys"], "other"]
        assert not allowed(env_a, action, KEY, extra), f"{action} with another context key"
        no_export = {k: v for k, v in data_key_context("env-a").items() if "export-id" not in k}
        no_export["kms:EncryptionContextKeys"] = ["mwaa-ops:environment"]
        assert not allowed(env_a, action, KEY, no_export), f"{action} without the export id"
        # Through S3 only what S3 seals: not a data key asked for directly with S3's context.
        assert not allowed(env_a, action, KEY, {k: v for k, v in S3_SEALED.items() if k != "kms:ViaService"})
    for action in ("kms:Encrypt", "kms:ReEncryptFrom", "kms:CreateGrant", "kms:ScheduleKeyDeletion"):
        assert not allowed(env_a, action, KEY, data_key_context("env-a")), action


def test_every_statement_names_its_resources_and_star_is_only_for_task_tokens(env_a):
    for statement in env_a["Statement"]:
        for action in _listed(statement["Action"]):
            assert "*" not in action, action
        if "*" in _listed(statement["Resource"]):
            assert all(a.startswith("states:SendTask") for a in _listed(statement["Action"])), statement
