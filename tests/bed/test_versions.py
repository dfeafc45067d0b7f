"""One list of Airflow versions (functions/common/airflow-versions.json): the functions embed it,
the control plane, scripts/install, scripts/metadata-matrix and the bed read it, and the docs
name every version in it. These tests keep them from drifting apart."""
import gzip
import json
import re
from pathlib import Path

import botocore

import airflow_bed as ab
import mwaa_local_env as model

ROOT = ab.ROOT
LISTED = [v["version"] for v in ab.airflow_versions()["versions"]]


def test_the_control_plane_accepts_exactly_the_listed_versions_and_defaults_to_the_newest():
    assert list(model.AIRFLOW_VERSIONS) == LISTED
    assert model.DEFAULT_AIRFLOW_VERSION == LISTED[-1] == "3.2.1"
    assert {v["bed"] for v in ab.airflow_versions()["versions"]} <= {"per-commit", "matrix"}


def test_the_functions_embed_this_very_file():
    source = (ROOT / "functions/common/src/versions.rs").read_text()
    embedded = re.search(r'include_str!\("([^"]+)"\)', source).group(1)
    assert (ROOT / "functions/common/src" / embedded).resolve() == ab.VERSIONS_FILE.resolve()


def test_every_version_botocore_documents_is_listed():
    """The model's documentation lags MWAA (no 3.2.1 there yet) but never lists a version MWAA
    does not take: each must be in the list, or the suite refuses to pause it."""
    model_file = next(Path(botocore.__file__).parent.glob("data/mwaa/*/service-2.json*"))
    raw = model_file.read_bytes()
    doc = json.loads(gzip.decompress(raw) if model_file.suffix == ".gz" else raw)
    text = doc["shapes"]["CreateEnvironmentInput"]["members"]["AirflowVersion"]["documentation"]
    documented = re.findall(r"<code>(\d+\.\d+\.\d+)</code>", text)
    assert "3.0.6" in documented, text
    assert [v for v in documented if v not in LISTED] == []


def test_every_listed_version_can_be_installed_where_the_bed_runs_it():
    constraints = ROOT / "tests/bed/constraints"
    for entry in ab.airflow_versions()["versions"]:
        v = entry["version"]
        if entry["bed"] == "per-commit":  # scripts/install makes every per-commit venv
            assert (constraints / f"airflow-{v}.txt").exists(), v
        else:
            assert (constraints / "matrix" / f"airflow-{v}.txt").exists(), v
    assert ab.per_commit_versions() == ["2.10.3", "3.0.6", "3.2.1"]


def test_the_readme_status_table_names_every_version_and_what_carries_over():
    readme = (ROOT / "README.md").read_text()
    table = readme.split("## Status", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in table.splitlines() if re.match(r"\| Airflow \d", line)]
    named = {re.match(r"\| Airflow ([\d.]+) ", line).group(1): line for line in rows}
    assert sorted(named) == sorted(LISTED), rows
    for v, line in named.items():  # | Airflow v | where it is tested | what carries over |
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        assert len(cells) == 3 and all(cells), line
        assert ("every table" in cells[2]) == v.startswith("2."), line
