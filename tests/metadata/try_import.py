"""Run the import DAG's code on manifests that must be refused: prints {manifest: error}.
Run by the Airflow venv's Python with the target environment's AIRFLOW__ settings."""
import json
import sys

import mwaa_ops_import

out = {}
for uri in sys.argv[1:]:
    try:
        mwaa_ops_import.run_import({"manifest": uri})
        out[uri] = "imported"
    except Exception as e:  # the task would push exactly this as its error
        out[uri] = f"{type(e).__name__}: {e}"
print(json.dumps(out))
