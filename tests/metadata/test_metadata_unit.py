"""Unit tests of the pure parts of the metadata DAGs (no Airflow, no database)."""
import copy
import datetime as dt
import gzip
import hashlib
import json
import os
import re
import sys
import types
from pathlib import Path

import pytest

import mwaa_ops_metadata as m


def table(columns, pk, serial=None, uniques=(), fks=()):
    return {"columns": {c: "value" for c in columns}, "pk": pk, "serial": serial,
            "uniques": [list(u) for u in uniques],
            "fks": [{"cols": c, "table": t, "ref": r} for c, t, r in fks]}


# A slice of the 2.10 schema with the shapes that matter.
SCHEMA = {
    "job": table(["id", "dag_id", "job_type"], ["id"], "id"),
    "log_template": table(["id", "filename", "elasticsearch_id"], ["id"], "id"),
    "dag": table(["dag_id", "is_paused"], ["dag_id"]),
    "dag_run": table(["id", "dag_id", "run_id", "creating_job_id", "log_template_id"], ["id"], "id",
                     uniques=[("dag_id", "execution_date"), ("dag_id", "run_id")],
                     fks=[(["log_template_id"], "log_template", ["id"])]),
    "task_instance": table(["dag_id", "task_id", "run_id", "map_index", "job_id", "trigger_id"],
                           ["dag_id", "task_id", "run_id", "map_index"],
                           fks=[(["dag_id", "run_id"], "dag_run", ["dag_id", "run_id"]),
                                (["trigger_id"], "trigger", ["id"])]),
    "trigger": table(["id", "kwargs", "triggerer_id"], ["id"], "id"),
    "xcom": table(["dag_run_id", "task_id", "map_index", "key", "dag_id", "run_id"],
                  ["dag_run_id", "task_id", "map_index", "key"],
                  fks=[(["dag_id", "task_id", "run_id", "map_index"], "task_instance",
                        ["dag_id", "task_id", "run_id", "map_index"])]),
    "dag_run_note": table(["dag_run_id", "user_id"], ["dag_run_id"],
                          fks=[(["dag_run_id"], "dag_run", ["id"]), (["user_id"], "ab_user", ["id"])]),
    "ab_user": table(["id"], ["id"], "id"),
    "serialized_dag": table(["dag_id"], ["dag_id"]),
}


def test_order_puts_parents_first_and_drops_regenerated_tables():
    order = m.table_order(SCHEMA)
    assert "ab_user" not in order and "serialized_dag" not in order
    pos = {t: i for i, t in enumerate(order)}
    assert pos["job"] < pos["dag_run"]  # creating_job_id: a logical reference
    assert pos["log_template"] < pos["dag_run"] < pos["task_instance"] < pos["xcom"]
    assert pos["trigger"] < pos["task_instance"] and pos["job"] < pos["trigger"]
    assert pos["dag_run"] < pos["dag_run_note"]


def test_xcom_dag_run_id_is_a_reference_even_without_a_foreign_key():
    assert ("dag_run_id",) in [cols for cols, target, _ in m.refs(SCHEMA, "xcom") if target == "dag_run"]


def test_cycles_are_named():
    schema = {"a": table(["id", "b_id"], ["id"], "id", fks=[(["b_id"], "b", ["id"])]),
              "b": table(["id", "a_id"], ["id"], "id", fks=[(["a_id"], "a", ["id"])])}
    with pytest.raises(ValueError, match="a, b"):
        m.table_order(schema)


def test_natural_keys():
    assert m.natural_key(SCHEMA, "dag_run") == ["dag_id", "run_id"]  # not the execution_date one
    assert m.natural_key(SCHEMA, "task_instance") == ["dag_id", "task_id", "run_id", "map_index"]
    assert m.natural_key(SCHEMA, "log_template") == ["filename", "elasticsearch_id"]
    assert m.natural_key(SCHEMA, "job") is None  # relies on the import marker


def test_remap_rewrites_only_changed_ids():
    row = {"dag_run_id": 3, "task_id": "t", "map_index": -1, "key": "k", "dag_id": "d", "run_id": "r"}
    m.remap(row, m.refs(SCHEMA, "xcom"), {"dag_run": {3: 103}})
    assert row["dag_run_id"] == 103
    row = {"id": 1, "dag_id": "d", "run_id": "r", "creating_job_id": None, "log_template_id": 2}
    m.remap(row, m.refs(SCHEMA, "dag_run"), {"job": {1: 9}})
    assert row["creating_job_id"] is None and row["log_template_id"] == 2


def test_values_round_trip():
    moment = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    assert m.encode("value", moment) == "2024-05-01T10:00:00+00:00"  # UTC whatever the session zone
    assert m.decode("binary", m.encode("binary", b"\x80\x05pickle")) == b"\x80\x05pickle"
    assert m.encode("json", "null") == "null" and m.encode("json", None) is None  # JSON null != SQL NULL
    assert json.dumps(m.encode("binary", memoryview(b"x")))


def test_envelope_round_trip_and_binding():
    key = os.urandom(32)
    sealed = m.Envelope(key).encrypt("s3cr3t", "connection.password")
    assert sealed.startswith(m.ENC_PREFIX) and "s3cr3t" not in sealed
    assert m.Envelope(key).decrypt(sealed, "connection.password") == "s3cr3t"
    with pytest.raises(Exception):  # moved to another column: the tag no longer matches
        m.Envelope(key).decrypt(sealed, "variable.val")
    with pytest.raises(Exception):
        m.Envelope(os.urandom(32)).decrypt(sealed, "connection.password")
    assert m.Envelope(key).encrypt("s3cr3t", "a") != m.Envelope(key).encrypt("s3cr3t", "a")  # fresh nonce


def test_layout_is_partitioned_by_date():
    now = dt.datetime(2026, 11, 5, 3, 15, 0, tzinfo=dt.timezone.utc)
    root = m.export_root("/mwaa-ops/metadata/", "prod", now)
    assert root == "mwaa-ops/metadata/prod/dt=2026-11-05/20261105T031500Z"
    assert m.object_key(root, "xcom") == root + "/xcom/xcom.jsonl.gz"
    assert m.object_key(root, "xcom", "tsv.gz") == root + "/xcom/xcom.tsv.gz"
    assert m.parse_s3_uri("s3://b/k/manifest.json") == ("b", "k/manifest.json")
    with pytest.raises(m.Refused):
        m.parse_s3_uri("b/k")


MANIFEST = {"format": m.DATABASE_FORMAT, "airflow_version": "2.10.3", "alembic_revision": "5f2621c13b39",
            "tables": [{"table": "dag", "key": "k/dag", "rows": 2, "sha256": "ab",
                        "columns": {"dag_id": "value", "is_paused": "value"}}]}


@pytest.mark.parametrize("change,message", [
    ({"format": "other/1"}, "manifest format"),
    ({"format": m.FORMAT}, "JSON Lines database export written by an earlier mwaa_ops_export"),
    ({"format": m.FORMAT, "source": "api", "airflow_version": "3.0.6"}, "REST API export"),
    ({"airflow_version": "2.9.2"}, "Airflow 2.9.2, this is 2.10.3"),
    ({"alembic_revision": "abc"}, "revision abc"),
])
def test_manifest_refused_when_it_does_not_fit(change, message):
    with pytest.raises(m.Refused, match=message):
        m.check_manifest(dict(MANIFEST, **change), "2.10.3", "5f2621c13b39", SCHEMA)


def test_manifest_refused_when_columns_differ():
    schema = dict(SCHEMA, dag=table(["dag_id", "is_paused", "new"], ["dag_id"]))
    with pytest.raises(m.Refused, match="table dag: columns differ"):
        m.check_manifest(MANIFEST, "2.10.3", "5f2621c13b39", schema)
    m.check_manifest(MANIFEST, "2.10.3", "5f2621c13b39", SCHEMA)  # the fitting one passes


def test_object_checks_name_table_and_object(tmp_path):
    path = tmp_path / "t.jsonl.gz"
    with gzip.open(path, "wt") as f:
        f.write('{"a":1}\n{"a":2}\n')
    entry = {"table": "xcom", "key": "x/xcom.jsonl.gz", "rows": 2, "sha256": m.sha256_file(path)}
    m.check_object(entry, m.sha256_file(path), sum(1 for _ in m.gzip_lines(path)))
    with pytest.raises(m.Refused, match=r"x/xcom.jsonl.gz \(table xcom\): SHA-256"):
        m.check_object(dict(entry, sha256="0" * 64), m.sha256_file(path), 2)
    with pytest.raises(m.Refused, match="3 rows, manifest says 2"):
        m.check_object(entry, entry["sha256"], 3)


def test_task_token_calls_are_skipped_without_a_token():
    token = m.TaskToken(None)
    token.heartbeat(), token.success({"x": 1}), token.failure("E", "cause")  # no client, no error
    assert token._sfn is None


class _Recorder:
    def __init__(self):
        self.calls = []

    def __getattr__(self, name):
        return lambda **kwargs: self.calls.append((name, kwargs)) or {"FailedEntryCount": 0}


def test_failures_go_to_the_task_token_or_else_to_an_event_notify_emails(monkeypatch):
    clients = {}
    monkeypatch.setattr(m, "client", lambda service, region=None: clients.setdefault(service, _Recorder()))
    detail = {"environment": "dev", "dag_id": "mwaa_ops_export", "run_id": "manual__1"}
    assert m.report_failure({"task_token": "tok"}, "Metadata Export Failed", "MwaaOps.ExportFailed",
                            "busy", detail) == "task_token"
    assert clients["stepfunctions"].calls == [
        ("send_task_failure", {"taskToken": "tok", "error": "MwaaOps.ExportFailed", "cause": "busy"})]
    assert "events" not in clients, "one failure, one alert: the failed execution is it"
    assert m.report_failure({}, "Metadata Export Failed", "MwaaOps.ExportFailed", "busy", detail) == "event"
    [(call, kwargs)] = clients["events"].calls
    [entry] = kwargs["Entries"]
    assert (call, entry["Source"], entry["DetailType"]) == ("put_events", "mwaa-ops", "Metadata Export Failed")
    assert json.loads(entry["Detail"]) == dict(detail, error="busy")
    # The event has the shape of events/metadata-export-failed.json, which notify is tested on.
    sample = json.loads((Path(__file__).resolve().parents[2] / "events" / "metadata-export-failed.json").read_text())
    assert set(json.loads(entry["Detail"])) <= set(sample["detail"])


def test_a_failure_that_cannot_be_reported_does_not_hide_the_failure(monkeypatch):
    def broken(service, region=None):
        raise RuntimeError("no credentials")
    monkeypatch.setattr(m, "client", broken)
    assert m.report_failure({}, "Metadata Import Failed", "MwaaOps.ImportFailed", "x", {}) == "nowhere"


def test_required_conf():
    assert m.require({"bucket": "b"}, "bucket") == "b"
    with pytest.raises(ValueError, match="'bucket' is required"):
        m.require({}, "bucket")


def test_rows_are_counted_without_parsing_and_gzip_is_reproducible(tmp_path):
    """The import verifies row counts by counting lines (no raw newline is inside a JSON row);
    the export's dump callback writes bytes and the gzip object is the same for the same rows."""
    rows = b'{"a":"x\\ny"}\n{"a":2}\n'

    def dump(out):
        out.write(rows)
        return 2, None
    paths = [tmp_path / "a" / "t.jsonl.gz", tmp_path / "b" / "t.jsonl.gz"]  # same name: it is in the header
    for path in paths:
        path.parent.mkdir()
        assert m.write_gz(str(path), dump) == (2, None)
    assert paths[0].read_bytes() == paths[1].read_bytes()
    assert m.count_lines(str(paths[0])) == 2 == len(list(m.gzip_lines(str(paths[0]))))
    with gzip.open(tmp_path / "c.gz", "wb") as f:
        f.write(b'{"a":1}\n{"a":2}')  # a last line without its newline still counts
    assert m.count_lines(str(tmp_path / "c.gz")) == 2
    (tmp_path / "d.gz").write_bytes(b"not gzip")
    with pytest.raises(OSError):
        m.count_lines(str(tmp_path / "d.gz"))


@pytest.mark.parametrize("value", ["plain", "", "tab\there", "line\nbreak\r\n", "back\\slash\\N", "\\N",
                                   '{"k": "x\\"y"}', "ünï\u2603"])
def test_text_format_fields_round_trip(value):
    """escape/unescape are PostgreSQL's COPY text rules: one row per line, tab between fields,
    \\N (a field of its own) for NULL -- so an escaped value never contains a raw tab or newline
    and is never the NULL marker."""
    import mwaa_ops_copy as c
    field = c.escape(value)
    assert b"\t" not in field and b"\n" not in field and field != c.NULL
    assert c.unescape(field) == value


def test_unescape_reads_every_escape_postgresql_writes_or_reads():
    import mwaa_ops_copy as c
    assert c.unescape(rb"a\bb\fc\vd\101\x41\\\q") == "a\bb\fc\vdAA\\q"


class FakeFernet:
    is_encrypted = True

    def encrypt(self, data: bytes) -> bytes:
        return b"fernet:" + data[::-1]


def test_import_rows_reseal_secrets_and_count_lines(tmp_path):
    """Rows streams an object's lines to COPY, opening each sealed value with the export's data
    key and encrypting it with this environment's Fernet key (and setting its flag); NULL stays
    NULL; a line longer than a read is kept whole."""
    import mwaa_ops_copy as c
    envelope = m.Envelope(os.urandom(32))
    long_secret = "s" * (c.CHUNK + 10)
    lines = []
    for i, secret in enumerate(["pw\t1", None, long_secret]):
        field = c.NULL if secret is None else c.escape(envelope.encrypt(secret, m.sealed_as("variable", "val", f"k{i}")))
        lines.append(b"\t".join([str(i).encode(), b"k%d" % i, field, b"f"]))
    path = tmp_path / "variable.tsv.gz"
    with gzip.open(path, "wb") as f:
        f.write(b"\n".join(lines) + b"\n")
    with c.Rows(str(path), "variable", ["id", "key", "val", "is_encrypted"], FakeFernet(), envelope,
                "2.10.3") as rows:
        data = b"".join(iter(lambda: rows.read(8192), b""))
    assert rows.rows == 3
    out = [line.split(b"\t") for line in data.split(b"\n")[:-1]]
    assert out[0] == [b"0", b"k0", c.escape("fernet:" + "pw\t1"[::-1]), b"t"]
    assert out[1] == [b"1", b"k1", c.NULL, b"f"]  # nothing to encrypt: the flag is left as it was
    assert c.unescape(out[2][2]) == "fernet:" + long_secret and out[2][3] == b"t"


@pytest.mark.parametrize("version,encrypted", [("2.7.2", False), ("2.8.1", False), ("2.9.2", True),
                                               ("2.10.3", True), ("2.11.0", True)])
def test_trigger_kwargs_are_fernet_encrypted_on_import_only_where_airflow_encrypts_them(tmp_path, version,
                                                                                       encrypted):
    """Airflow < 2.9 keeps a trigger's kwargs as JSON text and would fail to parse a Fernet
    token there: the import writes the plain JSON back. From 2.9 on they are encrypted."""
    import mwaa_ops_copy as c
    envelope, kwargs = m.Envelope(os.urandom(32)), '{"__var": {"token": "t\tok"}, "__type": "dict"}'
    path = tmp_path / "trigger.tsv.gz"
    with gzip.open(path, "wb") as f:
        f.write(b"\t".join([b"7", b"mod.Trigger", c.escape(envelope.encrypt(kwargs, m.sealed_as("trigger", "kwargs", "7"))), b"\\N"]) + b"\n")
    with c.Rows(str(path), "trigger", ["id", "classpath", "kwargs", "triggerer_id"], FakeFernet(), envelope,
                version) as rows:
        [line] = b"".join(iter(lambda: rows.read(8192), b"")).splitlines()
    field = c.unescape(line.split(b"\t")[2])
    assert field == ("fernet:" + kwargs[::-1] if encrypted else kwargs)
    assert field.startswith("{") is not encrypted  # how Airflow 2.9+ tells the two apart


def _sealed_variables(tmp_path, envelope, keys):
    """A variable object (COPY text) whose row `key` holds the value `v-<key>` sealed for it."""
    import mwaa_ops_copy as c
    path = tmp_path / "variable.tsv.gz"
    with gzip.open(path, "wb") as f:
        for i, key in enumerate(keys):
            sealed = c.escape(envelope.encrypt(f"v-{key}", m.sealed_as("variable", "val", key)))
            f.write(b"\t".join([str(i).encode(), key.encode(), sealed, b"t"]) + b"\n")
    return str(path)


def test_sealed_values_swapped_between_rows_are_refused_naming_only_table_column_and_row(tmp_path):
    import mwaa_ops_copy as c
    envelope, columns = m.Envelope(os.urandom(32)), ["id", "key", "val", "is_encrypted"]
    good = _sealed_variables(tmp_path, envelope, ["alpha", "beta"])
    assert c.open_sealed(good, "variable", columns, envelope) == 2
    with gzip.open(good, "rb") as f:
        rows = [line.rstrip(b"\n").split(b"\t") for line in f]
    rows[0][2], rows[1][2] = rows[1][2], rows[0][2]  # beta's value in alpha's row, and back
    with gzip.open(good, "wb") as f:
        f.write(b"".join(b"\t".join(r) + b"\n" for r in rows))
    with pytest.raises(m.Refused) as refused:
        c.open_sealed(good, "variable", columns, envelope)
    message = str(refused.value)
    assert message.startswith("table variable, column val, row 1: the sealed value does not open"), message
    assert "alpha" not in message and "beta" not in message


def test_a_manifest_is_bound_to_its_digest_environment_and_export():
    manifest = {"format": m.DATABASE_FORMAT, "environment": "env-a", "export_id": "e-1",
                "data_key": {"ciphertext": "x", "encryption_context": m.encryption_context("env-a", "e-1")}}
    body = json.dumps(manifest).encode()
    conf = {"manifest_sha256": hashlib.sha256(body).hexdigest().upper(), "export_id": "e-1"}
    assert m.bound_manifest(body, conf, "env-a") == manifest
    refusals = {
        "changed after the pause": (body + b" ", conf, "env-a"),
        "an export of environment 'env-a', not of 'env-b'": (body, conf, "env-b"),
        "the pause recorded 'e-2'": (body, dict(conf, export_id="e-2"), "env-a"),
    }
    for case in ("other_env_key", "old"):
        other = copy.deepcopy(manifest)
        if case == "old":  # written before exports were sealed to their environment
            del other["data_key"]["encryption_context"]
        else:
            other["data_key"]["encryption_context"] = m.encryption_context("env-b", "e-1")
        text = json.dumps(other).encode()
        needle = "no KMS encryption context" if case == "old" else "not to this environment and export"
        refusals[needle] = (text, dict(conf, manifest_sha256=hashlib.sha256(text).hexdigest()), "env-a")
    for needle, (text, c, env) in refusals.items():
        with pytest.raises(m.Refused, match=re.escape(needle)):
            m.bound_manifest(text, c, env)
    with pytest.raises(ValueError, match="manifest_sha256"):
        m.bound_manifest(body, {"export_id": "e-1"}, "env-a")


def test_conf_must_name_the_environment_mwaa_runs_the_dag_in(monkeypatch):
    monkeypatch.delenv("AIRFLOW_ENV_NAME", raising=False)
    assert m.own_environment({"environment": "env-a"}) == "env-a"
    monkeypatch.setenv("AIRFLOW_ENV_NAME", "env-b")
    with pytest.raises(m.Refused, match="conf names environment 'env-a', this is 'env-b'"):
        m.own_environment({"environment": "env-a"})


def test_a_task_token_step_functions_does_not_know_refuses_the_run_before_it_reads(monkeypatch):
    class Sfn:
        def __init__(self, code=None):
            self.code, self.beats = code, []

        def send_task_heartbeat(self, taskToken):
            self.beats.append(taskToken)
            if self.code:
                raise type("ClientError", (Exception,), {})("refused") if self.code == "plain" else \
                    _client_error(self.code)
    for code in ("InvalidToken", "TaskDoesNotExist", "TaskTimedOut"):
        token = m.TaskToken("made-up", "us-east-1")
        token._sfn = Sfn(code)
        with pytest.raises(m.Refused, match=f"Step Functions refused the task token \\({code}\\)"):
            token.verify()
    with pytest.raises(m.Refused, match="no task_token"):
        m.TaskToken(None).verify()
    token = m.TaskToken("real", "us-east-1")
    token._sfn = Sfn()
    token.verify()
    assert token._sfn.beats == ["real"]


def _client_error(code):
    e = Exception(f"An error occurred ({code})")
    e.response = {"Error": {"Code": code}}
    return e


def test_failures_are_reduced_to_table_column_constraint_and_row():
    class Diag:
        table_name, column_name, constraint_name = "connection", "conn_id", None
        context = "COPY connection, line 2: \"2\t\\N\thttp\texample.invalid\""
        message_detail = "Failing row contains (2, null, http, example.invalid)."

    class NotNullViolation(Exception):
        pgcode, diag = "23502", Diag()

    class IntegrityError(Exception):  # SQLAlchemy's wrapper: the statement and parameters too
        orig = NotNullViolation('null value in column "conn_id" violates not-null constraint\n'
                                'DETAIL:  Failing row contains (2, null, http, example.invalid).')
    wrapped = RuntimeError('import of table connection failed: null value in column "conn_id"')
    wrapped.__cause__ = IntegrityError("(psycopg2.errors.NotNullViolation)")
    for e in (IntegrityError("(psycopg2.errors.NotNullViolation) ... [parameters: {'host': 'example.invalid'}]"),
              IntegrityError.orig, wrapped):
        text = m.failure_text(e)
        assert text.startswith("NotNullViolation (SQLSTATE 23502), table connection, column conn_id, "
                               "row 2 of the object"), text
        assert "example.invalid" not in text and "Failing row" not in text
    text = m.failure_text(RuntimeError("boom\nDETAIL:  Failing row contains (secret)"))
    assert text == "RuntimeError: boom"
    text = m.failure_text(ValueError("x [SQL: INSERT ...] [parameters: ('secret',)]"))
    assert "secret" not in text and text.startswith("ValueError: x")
    assert m.failure_text(m.Refused("manifest changed")) == "Refused: manifest changed"


def test_a_refused_task_token_failure_is_reported_as_an_event_instead(monkeypatch):
    sent = []

    class Events:
        def put_events(self, Entries):
            sent.extend(Entries)
            return {"FailedEntryCount": 0}

    class Sfn:
        def send_task_failure(self, **_):
            raise _client_error("InvalidToken")
    monkeypatch.setattr(m, "client", lambda service, region=None: Sfn() if service == "stepfunctions" else Events())
    how = m.report_failure({"task_token": "made-up"}, "Metadata Import Failed", "MwaaOps.ImportRefused",
                           "Refused: token", {"dag_id": "mwaa_ops_import"})
    assert how == "event" and json.loads(sent[0]["Detail"])["error"] == "Refused: token"


def test_the_two_dags_are_admin_only_on_airflow_2(monkeypatch):
    for version, expected in (("2.7.2", {"Admin": {"can_read", "can_edit", "can_delete"}}), ("3.0.6", None)):
        monkeypatch.setitem(sys.modules, "airflow", types.SimpleNamespace(__version__=version))
        assert m.admin_only() == expected, version


def test_import_rows_of_a_table_without_secrets_are_the_objects_bytes(tmp_path):
    import mwaa_ops_copy as c
    body = b"".join(b"%d\tline\\nof %d\t\\N\n" % (i, i) for i in range(50_000))
    path = tmp_path / "task_instance.tsv.gz"
    with gzip.open(path, "wb") as f:
        f.write(body)
    with c.Rows(str(path), "task_instance", ["a", "b", "c"], None, None, "2.10.3") as rows:
        assert b"".join(iter(lambda: rows.read(c.CHUNK), b"")) == body
    assert rows.rows == 50_000


def test_the_token_beats_while_work_runs_and_a_task_given_up_commits_nothing():
    import time
    from botocore.exceptions import ClientError

    class Sfn:
        def __init__(self, refuse_after):
            self.beats, self.refuse_after = 0, refuse_after

        def send_task_heartbeat(self, taskToken):
            self.beats += 1
            if self.beats > self.refuse_after:
                raise ClientError({"Error": {"Code": "TaskTimedOut", "Message": "timed out"}},
                                  "SendTaskHeartbeat")

    token = m.TaskToken("tok", every=0.02)
    token._sfn = Sfn(refuse_after=1000)
    with token.beating():
        time.sleep(0.3)  # one long statement: no heartbeat() call from the work itself
        token.check_alive()
    assert token._sfn.beats >= 5 and token.gone is None

    token = m.TaskToken("tok", every=0.02)
    token._sfn = Sfn(refuse_after=2)
    with token.beating():
        time.sleep(0.3)
        with pytest.raises(m.Refused, match="no longer waits.*TaskTimedOut.*nothing was committed"):
            token.check_alive()
    assert token._sfn.beats == 3, "beating stops once Step Functions gave up"
