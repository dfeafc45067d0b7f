"""Unit tests of the Airflow 3 path (mwaa_ops_rest.py): the InvokeRestApi client against a fake
MWAA client, manifest checks, and the upsert decisions. No Airflow, no network."""
import copy
import os
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

import mwaa_ops_metadata as m
import mwaa_ops_rest as r


class FakeMwaa:
    """invoke_rest_api answered by handler(method, path, query, body) -> (status, body)."""

    def __init__(self, handler):
        self.handler, self.calls = handler, []

    def invoke_rest_api(self, Name, Method, Path, QueryParameters=None, Body=None):
        self.calls.append((Method, Path, QueryParameters, Body))
        status, body = self.handler(Method, Path, QueryParameters or {}, Body)
        if status >= 400:  # the shape botocore parses MWAA's RestApi*Exception into
            code = "RestApiClientException" if status < 500 else "RestApiServerException"
            raise ClientError({"Error": {"Code": code, "Message": "x"}, "RestApiStatusCode": status,
                               "RestApiResponse": body}, "InvokeRestApi")
        return {"RestApiStatusCode": status, "RestApiResponse": body}


def listing(field, items):
    def handler(method, path, query, body):
        start, limit = int(query["offset"]), int(query["limit"])
        return 200, {field: items[start:start + limit], "total_entries": len(items)}
    return handler


def test_pages_follow_limit_and_offset_to_total_entries():
    items = [{"key": f"k{i:03}"} for i in range(230)]
    mwaa = FakeMwaa(listing("variables", items))
    assert r.Rest("env", mwaa).pages("/variables", "variables") == items
    assert [(c[2]["offset"], c[2]["limit"]) for c in mwaa.calls] == [(0, 100), (100, 100), (200, 100)]


def test_pages_stop_on_an_empty_page_even_if_the_total_says_more():
    mwaa = FakeMwaa(lambda *_: (200, {"pools": [], "total_entries": 5}))  # rows deleted meanwhile
    assert r.Rest("env", mwaa).pages("/pools", "pools") == []
    assert len(mwaa.calls) == 1


def test_query_strings_go_in_query_parameters_and_long_paths_are_refused_before_calling():
    mwaa = FakeMwaa(lambda *_: (200, {"dags": [], "total_entries": 0}))
    r.list_dags(r.Rest("env", mwaa))
    assert mwaa.calls[0][1] == "/dags" and mwaa.calls[0][2]["exclude_stale"] == "true"
    with pytest.raises(r.RestApiError, match="66 characters, MWAA allows 64"):
        r.Rest("env", mwaa).call("PATCH", "/dags/" + "d" * 60)
    assert len(mwaa.calls) == 1


def test_airflow_errors_name_the_call_status_and_detail():
    mwaa = FakeMwaa(lambda *_: (404, {"detail": "The DAG with dag_id: `x` was not found", "status": 404}))
    with pytest.raises(r.RestApiError) as e:
        r.set_paused(r.Rest("prod-env", mwaa), ["x"], True)
    assert str(e.value).startswith("InvokeRestApi PATCH /dags/x on prod-env: Airflow answered 404: ")
    assert "was not found" in str(e.value) and e.value.status == 404
    mwaa = FakeMwaa(lambda *_: (503, "upstream down"))
    waits = []
    with pytest.raises(r.RestApiError, match="Airflow answered 503: \"upstream down\""):
        r.Rest("e", mwaa, sleep=waits.append).call("GET", "/pools")
    assert len(mwaa.calls) == r.ATTEMPTS and waits == [2, 4, 8, 16], "5xx is tried again, then named"


def test_transient_failures_are_tried_again_and_client_errors_are_not():
    answers = iter([(504, "gateway"), (502, "bad gateway"), (200, {"pools": [], "total_entries": 0})])
    mwaa = FakeMwaa(lambda *_: next(answers))
    waits = []
    assert r.Rest("e", mwaa, sleep=waits.append).call("GET", "/pools") == {"pools": [], "total_entries": 0}
    assert len(mwaa.calls) == 3 and waits == [2, 4]
    mwaa = FakeMwaa(lambda *_: (400, {"detail": "bad"}))
    with pytest.raises(r.RestApiError, match="answered 400"):
        r.Rest("e", mwaa, sleep=waits.append).call("PATCH", "/pools")
    assert len(mwaa.calls) == 1


def test_errors_never_echo_what_was_sent():
    """FastAPI's 422 repeats each failing field's input: a password must not reach the logs."""
    detail = [{"type": "json_invalid", "loc": ["body", "extra"], "msg": "Invalid JSON",
               "input": "{\"token\": \"s3cr3t-tok\"", "ctx": {"error": "s3cr3t-tok"}}]
    mwaa = FakeMwaa(lambda *_: (422, {"detail": detail}))
    with pytest.raises(r.RestApiError) as e:
        r.Rest("e", mwaa).call("PATCH", "/connections", body={})
    assert "Invalid JSON" in str(e.value) and "s3cr3t" not in str(e.value)
    errors = {"create": {"success": [], "errors": [{"error": "bad", "input": {"password": "s3cr3t-pw"}}]}}
    mwaa = FakeMwaa(lambda *_: (200, errors))
    with pytest.raises(r.RestApiError) as e:
        r.Rest("e", mwaa).bulk("/connections", [{"connection_id": "c"}])
    assert "bad" in str(e.value) and "s3cr3t" not in str(e.value)


def test_a_dag_id_too_long_for_the_path_is_patched_by_pattern_only_when_it_matches_alone():
    long_id = "a_very_long_dag_id_" + "x" * 50
    dags = {"dags": [{"dag_id": long_id, "is_paused": False}], "total_entries": 1}
    mwaa = FakeMwaa(lambda method, path, query, body: (200, dags))
    r.set_paused(r.Rest("e", mwaa), [long_id], True)
    (m1, p1, q1, _), (m2, p2, q2, b2) = mwaa.calls
    assert (m1, p1, q1["dag_id_pattern"]) == ("GET", "/dags", long_id)
    assert (m2, p2, q2["dag_id_pattern"], q2["update_mask"], b2) == ("PATCH", "/dags", long_id, "is_paused",
                                                                      {"is_paused": True})
    twins = {"dags": [{"dag_id": long_id}, {"dag_id": long_id + "_v2"}], "total_entries": 2}
    mwaa = FakeMwaa(lambda *_: (200, twins))
    # Not addressable: reported, not raised (one such DAG must not block a pause or a resume).
    assert r.set_paused(r.Rest("e", mwaa), [long_id], False) == [long_id]
    assert [c[0] for c in mwaa.calls] == ["GET"]  # nothing patched


def test_mwaa_errors_without_an_airflow_status_are_named_too():
    error = ClientError({"Error": {"Code": "AccessDeniedException", "Message": "not allowed"}}, "InvokeRestApi")
    mapped = r.rest_error("GET", "/pools", "e", error)
    assert str(mapped) == "InvokeRestApi GET /pools on e: AccessDeniedException: not allowed"
    assert mapped.status is None


def test_allowed_statuses_answer_none():
    mwaa = FakeMwaa(lambda *_: (409, {"detail": "exists"}))
    assert r.Rest("e", mwaa).call("POST", "/variables", body={}, allow=(409,)) is None


def test_bulk_upserts_in_chunks_and_raises_the_errors_a_200_carries():
    seen = []

    def handler(method, path, query, body):
        [action] = body["actions"]
        assert (action["action"], action["action_on_existence"]) == ("create", "overwrite")
        seen.append(len(action["entities"]))
        return 200, {"create": {"success": [e["key"] for e in action["entities"]], "errors": []}}
    entities = [{"key": f"k{i}", "value": "v", "description": None} for i in range(120)]
    assert r.Rest("e", FakeMwaa(handler)).bulk("/variables", entities) == [e["key"] for e in entities]
    assert seen == [50, 50, 20]
    failing = FakeMwaa(lambda *_: (200, {"create": {"success": [], "errors": [{"error": "boom", "status_code": 400}]}}))
    with pytest.raises(r.RestApiError, match="PATCH /variables on e: .*boom"):
        r.Rest("e", failing).bulk("/variables", entities[:1])


def test_busy_task_instances_leave_ours_out_and_the_wait_names_them():
    tis = [{"dag_id": "etl", "dag_run_id": "r1", "task_id": "load", "map_index": -1, "state": "running"},
           {"dag_id": "mwaa_ops_export", "dag_run_id": "x", "task_id": "export", "map_index": -1, "state": "running"}]

    def handler(method, path, query, body):
        assert (method, path) == ("POST", "/dags/~/dagRuns/~/taskInstances/list")
        assert body["state"] == list(r.BUSY_STATES)
        page = tis[body["page_offset"]:body["page_offset"] + body["page_limit"]]
        return 200, {"task_instances": page, "total_entries": len(tis)}
    rest = r.Rest("e", FakeMwaa(handler))
    assert r.busy_task_instances(rest) == [("etl", "r1", "load", -1, "running")]
    now, beats = [0.0], []
    with pytest.raises(TimeoutError, match=r"1 task instances still busy after 5 s: etl/r1/load\[-1\]=running"):
        r.wait_until_idle(rest, 5, 2, lambda: beats.append(1), clock=lambda: now[0],
                          sleep=lambda s: now.__setitem__(0, now[0] + s))
    assert len(beats) == 3  # heartbeats while waiting
    tis.pop(0)
    r.wait_until_idle(rest, 5, 2)  # only our own task runs: idle


def test_active_dags_are_the_unpaused_ones_but_ours():
    dags = [{"dag_id": "a", "is_paused": False}, {"dag_id": "b", "is_paused": True},
            {"dag_id": "mwaa_ops_export", "is_paused": False}]
    assert r.active_dags(dags) == ["a"]


def test_paused_changes_write_only_what_differs_and_name_missing_dags():
    rows = [{"dag_id": "on", "is_paused": False}, {"dag_id": "off", "is_paused": True},
            {"dag_id": "same", "is_paused": True}, {"dag_id": "gone", "is_paused": False},
            {"dag_id": "mwaa_ops_import", "is_paused": True}]
    present = {"on": True, "off": False, "same": True, "mwaa_ops_import": False}
    assert r.paused_changes(rows, present) == ({"on": False, "off": True}, ["gone"])
    assert r.paused_changes(rows, {"on": False, "off": True, "same": True}) == ({}, ["gone"])  # converged


def test_entities_keep_every_field_and_strings_stay_strings():
    [v] = r.variable_entities([{"key": "k", "val": '{"a": 1}', "description": "d"}])
    assert v == {"key": "k", "value": '{"a": 1}', "description": "d"}
    conn = {c: None for c in r.TABLES["connection"]}
    conn.update(conn_id="c", conn_type="http", password="p", extra='{"token": "t"}', port=5432)
    [c] = r.connection_entities([conn])
    assert (c["connection_id"], c["password"], c["extra"], c["port"]) == ("c", "p", '{"token": "t"}', 5432)
    [p] = r.pool_entities([{"pool": "default_pool", "slots": 77, "description": "x", "include_deferred": False}])
    assert p == {"name": "default_pool", "slots": 77, "description": "x", "include_deferred": False}


def test_marker_is_found_by_listing_because_its_path_would_be_too_long():
    export_id = "3f1c2a9e-0000-4000-8000-123456789abc"
    assert len("/variables/" + r.marker(export_id)) > r.MAX_PATH
    variables = [{"key": "x" + r.marker(export_id), "value": "{}"},
                 {"key": r.marker(export_id), "value": '{"written": {"variable": 2}}'}]
    mwaa = FakeMwaa(listing("variables", variables))
    assert r.imported_before(r.Rest("e", mwaa), export_id) == {"written": {"variable": 2}}
    assert mwaa.calls[0][2]["variable_key_pattern"] == export_id
    assert r.imported_before(r.Rest("e", FakeMwaa(listing("variables", []))), export_id) is None


def manifest_3x():
    return {"format": m.FORMAT, "source": r.SOURCE, "airflow_version": "3.0.6", "export_id": "x",
            "active_dags": [], "data_key": {},
            "tables": [{"table": t, "columns": {c: "value" for c in cols}} for t, cols in r.TABLES.items()]}


@pytest.mark.parametrize("change,message", [
    (lambda x: x.update(format="other/1"), "manifest format"),
    (lambda x: x.pop("source"), "Airflow 2.x database export"),
    (lambda x: x.update(airflow_version="3.0.2"), "Airflow 3.0.2, this is 3.0.6"),
    (lambda x: x["tables"].pop(1), "manifest tables"),
    (lambda x: x["tables"].reverse(), "manifest tables"),
    (lambda x: x["tables"][2]["columns"].pop("password"), "table connection: columns"),
    (lambda x: x.pop("data_key"), "no data_key"),
])
def test_3x_manifest_refused_when_it_does_not_fit(change, message):
    r.check_manifest(manifest_3x(), "3.0.6")  # the fitting one passes
    bad = copy.deepcopy(manifest_3x())
    change(bad)
    with pytest.raises(m.Refused, match=message):
        r.check_manifest(bad, "3.0.6")


def test_2x_import_refuses_a_3x_export():
    with pytest.raises(m.Refused, match="REST API export: Airflow 2.10.3 imports only database exports"):
        m.check_manifest(dict(manifest_3x(), alembic_revision=None), "2.10.3", None, {})


def test_rows_are_checked_and_unsealed_before_any_write():
    key = os.urandom(32)
    env = m.Envelope(key)
    rows = [{"key": "a", "val": env.encrypt("s3cr3t", m.sealed_as("variable", "val", "a")), "description": None},
            {"key": "b", "val": None, "description": "no value"}]
    r.check_rows("variable", rows)
    assert [x["val"] for x in r.unseal("variable", rows, env)] == ["s3cr3t", None]
    with pytest.raises(m.Refused, match="row 2 does not have the columns"):
        r.check_rows("variable", [rows[0], {"key": "b"}])
    moved = [dict(rows[0], val=env.encrypt("pw", m.sealed_as("connection", "password", "a")))]
    with pytest.raises(m.Refused, match="table variable, column val, row 1: the sealed value does not open"):
        r.unseal("variable", moved, env)
    swapped = [dict(rows[0], key="b"), dict(rows[1], key="a")]  # a's value now sits in row b
    with pytest.raises(m.Refused, match="row 1") as refused:
        r.unseal("variable", swapped, env)
    assert "'a'" not in str(refused.value) and "'b'" not in str(refused.value)  # row keys are data
    with pytest.raises(m.Refused, match="does not open"):
        r.unseal("variable", rows, m.Envelope(os.urandom(32)))


def test_export_rows_seal_secrets_and_take_values_from_the_sdk_not_from_rest():
    env = m.Envelope(os.urandom(32))
    masked = [{"key": "secret_var", "value": "***", "description": "d"}]
    rest = r.Rest("e", FakeMwaa(listing("variables", masked)))
    [row] = r.variable_rows(rest, lambda k: "real-" + k, env)
    assert row["key"] == "secret_var" and row["description"] == "d" and "real" not in row["val"]
    assert env.decrypt(row["val"], m.sealed_as("variable", "val", "secret_var")) == "real-secret_var"

    class Conn:
        conn_type, host, schema, login, port = "postgres", "h", "s", "l", 5432
        password, extra = "pw", '{"token": "t"}'
    conns = [{"connection_id": "c", "password": "***", "extra": '{"token": "***"}', "description": "dc"}]
    [row] = r.connection_rows(r.Rest("e", FakeMwaa(listing("connections", conns))), lambda i: Conn, env)
    assert sorted(row) == sorted(r.TABLES["connection"]) and row["description"] == "dc"
    assert env.decrypt(row["password"], m.sealed_as("connection", "password", "c")) == "pw"
    assert env.decrypt(row["extra"], m.sealed_as("connection", "extra", "c")) == '{"token": "t"}'
