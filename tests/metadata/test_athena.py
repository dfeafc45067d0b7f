"""infra/dags/athena.sql against what the export writes: each Athena table declares exactly the
columns of that Airflow 2.10.3 table in the order the export writes their fields (Airflow's own
models, read by its venv: no database), and the partition path the DDL documents is the path
the export uses."""
import datetime as dt
import json
import os
import re
import subprocess
from pathlib import Path

import pytest

import mwaa_ops_metadata as m

ROOT = Path(__file__).resolve().parents[2]

DDL = (ROOT / "infra" / "dags" / "athena.sql").read_text()
AIRFLOW = ROOT / ".bed" / "airflow-2.10.3" / "bin" / "python"
MODELS = """
import json, sys
import airflow.models
from airflow.models.base import Base
airflow.models.import_all_models()  # models load lazily: register every one on Base.metadata
print(json.dumps({t: [c.name for c in Base.metadata.tables[t].columns] for t in sys.argv[1:]}))
"""


def declared():
    """{airflow table: [declared columns]} of each CREATE EXTERNAL TABLE mwaa_ops_<table>."""
    tables = {}
    for name, body in re.findall(r"CREATE EXTERNAL TABLE IF NOT EXISTS mwaa_ops_(\w+) \((.*?)\n\)", DDL, re.S):
        body = re.sub(r"--[^\n]*", "", body)
        tables[name] = [col.split()[0] for col in body.replace("\n", " ").split(",") if col.strip()]
    return tables


def test_the_ddl_declares_tables_with_columns():
    tables = declared()
    assert {"dag_run", "task_instance", "task_instance_history", "log"} <= set(tables), tables
    assert all(len(cols) >= 5 for cols in tables.values()), tables


@pytest.mark.skipif(os.environ.get("MWAA_OPS_SKIP_AIRFLOW") == "1", reason="MWAA_OPS_SKIP_AIRFLOW=1")
def test_each_table_declares_every_column_of_airflow_2_10_in_the_exports_order(tmp_path):
    assert AIRFLOW.exists(), f"{AIRFLOW} missing: run scripts/install"
    tables = declared()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(AIRFLOW_HOME=str(tmp_path), AIRFLOW__CORE__LOAD_EXAMPLES="False",
               AIRFLOW__CORE__UNIT_TEST_MODE="False", SCARF_ANALYTICS="false", DO_NOT_TRACK="true")
    out = subprocess.run([str(AIRFLOW), "-c", MODELS, *tables], env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    columns = json.loads(out.stdout.strip().splitlines()[-1])
    schema = {t: {"columns": dict.fromkeys(cols, "value")} for t, cols in columns.items()}
    exported = {t: list(m.exported_columns(schema, t)) for t in tables}  # the export's field order
    assert tables == exported


def test_the_documented_partition_path_is_the_exports():
    """The DDL's example LOCATION and the export's key for the same export must agree."""
    root = m.export_root("PREFIX", "prod", dt.datetime(2026, 11, 5, 3, 15, tzinfo=dt.timezone.utc))
    example = re.search(r"LOCATION '(s3://BUCKET/[^']+)task_instance/'", DDL).group(1)
    assert example == f"s3://BUCKET/{root}/"
    layout = re.search(r"Layout: (s3://BUCKET/PREFIX/\S+)", DDL).group(1)
    assert layout.endswith("/<table>/<table>.tsv.gz")
    assert m.object_key(root, "log", m.DATABASE_SUFFIX).endswith("/log/log.tsv.gz")
