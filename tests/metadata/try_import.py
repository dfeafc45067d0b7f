"""Run the import DAG's code on manifests that must be refused: prints {manifest: error}.
Run by the Airflow venv's Python with the target environment's AIRFLOW__ settings;
MWAA_OPS_TRY_CONF (JSON) is merged into each conf (e.g. the environment, on 3.x)."""
import json
import os
import sys

import mwaa_ops_import

extra = json.loads(os.environ.get("MWAA_OPS_TRY_CONF") or "{}")
out = {}
for uri in sys.argv[1:]:
    try:
        mwaa_ops_import.run_import(dict(extra, manifest=uri))
        out[uri] = "imported"
    except Exception as e:  # the task would push exactly this as its error
        out[uri] = f"{type(e).__name__}: {e}"
print(json.dumps(out))
