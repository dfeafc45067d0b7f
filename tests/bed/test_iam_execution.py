"""The export/import DAGs' execution role on the bed (iam_execution.py): a key holding exactly
infra/dags/README.md's policy for one environment gets its own exports and data keys, and AWS's
refusal for another environment's, for a policy missing a statement, and for the KMS calls S3
makes on its behalf (SSE-KMS) when the policy does not cover them.

Run: .bed/venv/bin/python -m pytest tests/bed/test_iam_execution.py
"""
from __future__ import annotations

import json
import urllib.error
import urllib.request

import boto3
import pytest
from botocore.exceptions import ClientError

import iam_execution
import mwaa_ops_metadata as m
from test_accounts import OWNER as ACCOUNT, REGION, TESTING as ADMIN, fresh, moto  # noqa: F401

BUCKET = "mwaa-ops-suite"
EXPORT = "metadata/{env}/dt=2026-11-30/20261130T010203Z/variable/variable.jsonl.gz"


def client(moto, service, key=None):
    creds = ADMIN if key is None else {"region_name": REGION, "aws_access_key_id": key,
                                       "aws_secret_access_key": "x"}
    return boto3.client(service, endpoint_url=moto.url, **creds)


@pytest.fixture
def suite(moto):
    """The suite bucket as the template makes it: versioned, SSE-KMS by default with the suite
    key and an S3 Bucket Key; returns the key's ARN."""
    key_arn = client(moto, "kms").create_key()["KeyMetadata"]["Arn"]
    s3 = client(moto, "s3")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_encryption(Bucket=BUCKET, ServerSideEncryptionConfiguration={"Rules": [{
        "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms",
                                               "KMSMasterKeyID": key_arn},
        "BucketKeyEnabled": True}]})
    return key_arn


def execution_role(moto, env, key_arn, without=None):
    return iam_execution.register_with(moto.url, env, BUCKET, key_arn, REGION, ACCOUNT, without)


def refused(call):
    with pytest.raises(ClientError) as e:
        call()
    error = e.value.response["Error"]
    return error["Code"], e.value.response["ResponseMetadata"]["HTTPStatusCode"], error["Message"]


def last_refusal(moto) -> tuple:
    """(role, action, resource) of the bed's last IAM refusal: S3 answers AccessDenied with
    "Access Denied" on the bed, so the record says what was refused."""
    records = json.loads(urllib.request.urlopen(f"{moto.url}/moto-api/bed-iam/refused").read())
    return records[-1]["role"], records[-1]["action"], records[-1]["resource"]


def data_key(kms, key_arn, env, export_id="export-1"):
    return kms.generate_data_key(KeyId=key_arn, KeySpec="AES_256",
                                 EncryptionContext=m.encryption_context(env, export_id))


def test_an_environment_writes_and_reads_its_own_exports_and_data_keys(moto, suite):
    key = execution_role(moto, "env-a", suite)
    s3, kms = client(moto, "s3", key), client(moto, "kms", key)
    # As the export writes: SSE-KMS named in the request (S3 asks KMS for a data key as us).
    put = s3.put_object(Bucket=BUCKET, Key=EXPORT.format(env="env-a"), Body=b"rows",
                        ServerSideEncryption="aws:kms", SSEKMSKeyId=suite)
    assert put["ServerSideEncryption"] == "aws:kms"
    got = s3.get_object(Bucket=BUCKET, Key=EXPORT.format(env="env-a"), VersionId=put["VersionId"])
    assert got["Body"].read() == b"rows"
    s3.download_file(BUCKET, EXPORT.format(env="env-a"), "/dev/null")
    s3.list_objects_v2(Bucket=BUCKET, Prefix="metadata/env-a/dt=")
    sealed = data_key(kms, suite, "env-a")
    opened = kms.decrypt(CiphertextBlob=sealed["CiphertextBlob"],
                         EncryptionContext=m.encryption_context("env-a", "export-1"))
    assert opened["Plaintext"] == sealed["Plaintext"]
    client(moto, "events", key).put_events(Entries=[{
        "Source": "mwaa-ops", "DetailType": "Metadata Export Failed", "Detail": "{}"}])
    # A made-up token is Step Functions' own refusal, not IAM's: the DAGs' first call relies on it.
    code, _, _ = refused(lambda: client(moto, "stepfunctions", key).send_task_success(
        taskToken="made-up", output="{}"))
    assert code != "AccessDeniedException", code


def test_an_environment_can_neither_read_nor_replace_another_environments_export(moto, suite):
    b = client(moto, "s3", execution_role(moto, "env-b", suite))
    version = b.put_object(Bucket=BUCKET, Key=EXPORT.format(env="env-b"), Body=b"b's rows",
                           ServerSideEncryption="aws:kms", SSEKMSKeyId=suite)["VersionId"]
    a = client(moto, "s3", execution_role(moto, "env-a", suite))
    assert refused(lambda: a.get_object(
        Bucket=BUCKET, Key=EXPORT.format(env="env-b"), VersionId=version))[:2] == \
        ("AccessDenied", 403)
    assert last_refusal(moto) == ("env-a-execution-role", "s3:GetObjectVersion",
                                  f"arn:aws:s3:::{BUCKET}/{EXPORT.format(env='env-b')}")
    assert refused(lambda: a.get_object(Bucket=BUCKET, Key=EXPORT.format(env="env-b")))[:2] == \
        ("AccessDenied", 403)
    assert refused(lambda: a.put_object(Bucket=BUCKET, Key=EXPORT.format(env="env-b"),
                                        Body=b"forged"))[:2] == ("AccessDenied", 403)
    assert refused(lambda: a.list_objects_v2(Bucket=BUCKET, Prefix="metadata/env-b/"))[:2] == \
        ("AccessDenied", 403)
    # A prefix that only starts like A's is not A's.
    assert refused(lambda: a.put_object(Bucket=BUCKET, Key="metadata/env-ab/x", Body=b""))[:2] == \
        ("AccessDenied", 403)


def test_an_environment_cannot_decrypt_another_environments_data_key(moto, suite):
    sealed = data_key(client(moto, "kms", execution_role(moto, "env-b", suite)), suite, "env-b")
    a = client(moto, "kms", execution_role(moto, "env-a", suite))
    code, status, message = refused(lambda: a.decrypt(
        CiphertextBlob=sealed["CiphertextBlob"],
        EncryptionContext=m.encryption_context("env-b", "export-1")))
    assert (code, status) == ("AccessDeniedException", 400)
    assert f"kms:Decrypt on resource: {suite}" in message, message
    # Nor can A ask for a data key under B's context, under no context, or with a key extra.
    assert refused(lambda: data_key(a, suite, "env-b"))[:2] == ("AccessDeniedException", 400)
    assert refused(lambda: a.generate_data_key(KeyId=suite, KeySpec="AES_256"))[0] == \
        "AccessDeniedException"
    assert refused(lambda: a.generate_data_key(KeyId=suite, KeySpec="AES_256", EncryptionContext={
        **m.encryption_context("env-a", "e-1"), "other": "x"}))[0] == "AccessDeniedException"
    assert refused(lambda: a.generate_data_key(KeyId=suite, KeySpec="AES_256", EncryptionContext={
        "mwaa-ops:environment": "env-a"}))[0] == "AccessDeniedException", "Null: export id"
    # S3's own context asked for directly: kms:ViaService is what S3 alone adds.
    assert refused(lambda: a.generate_data_key(KeyId=suite, KeySpec="AES_256", EncryptionContext={
        "aws:s3:arn": f"arn:aws:s3:::{BUCKET}"}))[0] == "AccessDeniedException"


def test_without_the_statement_for_s3s_kms_calls_the_export_cannot_write_nor_read(moto, suite):
    full = client(moto, "s3", execution_role(moto, "env-a", suite))
    version = full.put_object(Bucket=BUCKET, Key=EXPORT.format(env="env-a"),
                              Body=b"rows")["VersionId"]  # sealed by the bucket's default
    s3 = client(moto, "s3", execution_role(moto, "env-a", suite, without=["ObjectsSealedByS3"]))
    assert refused(lambda: s3.put_object(
        Bucket=BUCKET, Key=EXPORT.format(env="env-a"), Body=b"rows",
        ServerSideEncryption="aws:kms", SSEKMSKeyId=suite))[:2] == ("AccessDenied", 403)
    assert last_refusal(moto) == ("env-a-execution-role", "kms:GenerateDataKey", suite)
    assert refused(lambda: s3.get_object(
        Bucket=BUCKET, Key=EXPORT.format(env="env-a"), VersionId=version))[:2] == \
        ("AccessDenied", 403)
    assert last_refusal(moto) == ("env-a-execution-role", "kms:Decrypt", suite)
    s3.head_object(Bucket=BUCKET, Key=EXPORT.format(env="env-a"))  # a HEAD decrypts nothing


def test_without_its_bucket_key_s3_seals_with_the_objects_arn_which_the_policy_does_not_allow(
        moto, suite):
    s3 = client(moto, "s3", execution_role(moto, "env-a", suite))
    assert refused(lambda: s3.put_object(
        Bucket=BUCKET, Key=EXPORT.format(env="env-a"), Body=b"rows",
        ServerSideEncryption="aws:kms", SSEKMSKeyId=suite, BucketKeyEnabled=False))[0] == \
        "AccessDenied"
    assert last_refusal(moto) == ("env-a-execution-role", "kms:GenerateDataKey", suite)


def test_a_statement_the_readme_does_not_have_is_a_bad_request(moto, suite):
    with pytest.raises(urllib.error.HTTPError) as e:
        execution_role(moto, "env-a", suite, without=["NoSuchStatement"])
    assert e.value.code == 400 and b"NoSuchStatement" in e.value.read()


def test_the_key_holds_exactly_the_readmes_statements(moto, suite):
    key = execution_role(moto, "env-a", suite)
    entry = json.loads(urllib.request.urlopen(f"{moto.url}/moto-api/bed-iam/keys/{key}").read())
    documented = iam_execution.documented_policy("env-a", BUCKET, suite, REGION, ACCOUNT)
    assert entry["statements"] == documented["Statement"]
    assert entry["arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/env-a-execution-role/bed"


def test_on_airflow_3_the_dags_may_call_their_own_airflow_and_no_other(moto, suite):
    """The 3.x DAGs reach their Airflow through MWAA InvokeRestApi: the local control plane
    holds them to the policy's ItsOwnAirflowOn3 (IAM decides before the environment is looked
    up, so an unknown environment is MWAA's own 404 to who may call it)."""
    import mwaa_local
    from botocore.config import Config
    plane = mwaa_local.serve(moto_url=moto.url, airflows=[], region=REGION, account=ACCOUNT)
    try:
        def mwaa(key):
            return boto3.client("mwaa", endpoint_url=plane.url, region_name=REGION,
                                aws_access_key_id=key, aws_secret_access_key="x",
                                config=Config(inject_host_prefix=False, retries={"max_attempts": 1}))

        def call(client, env):
            return lambda: client.invoke_rest_api(Name=env, Method="GET", Path="/dags")

        own = mwaa(execution_role(moto, "env-a", suite))
        assert refused(call(own, "env-a"))[:2] == ("ResourceNotFoundException", 404)
        assert refused(call(own, "env-b"))[:2] == ("AccessDeniedException", 403)
        without = mwaa(execution_role(moto, "env-a", suite, without=["ItsOwnAirflowOn3"]))
        code, status, message = refused(call(without, "env-a"))
        assert (code, status) == ("AccessDeniedException", 403)
        assert "airflow:InvokeRestApi" in message and "role/env-a/" in message, message
    finally:
        plane.shutdown()


def test_aws_kms_without_a_key_id_seals_with_the_aws_managed_key_not_the_buckets(moto, suite):
    """S3's PutObject: `aws:kms` without a key id is the AWS managed key aws/s3, whatever the
    bucket's default; no header at all takes the bucket's default (the suite key)."""
    s3 = client(moto, "s3")
    s3.put_object(Bucket=BUCKET, Key="settings/named", Body=b"{}", ServerSideEncryption="aws:kms")
    s3.put_object(Bucket=BUCKET, Key="settings/default", Body=b"{}")
    named = s3.head_object(Bucket=BUCKET, Key="settings/named")
    default = s3.head_object(Bucket=BUCKET, Key="settings/default")
    assert named["SSEKMSKeyId"].endswith(":alias/aws/s3"), named
    assert default["SSEKMSKeyId"] == suite, default
