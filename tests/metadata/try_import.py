"""Run the import DAG's code on exports that must be refused: prints {case: error}.
Run by the Airflow venv's Python with the target environment's AIRFLOW__ settings. Each
argument is a JSON conf with a `case` name (or a bare manifest URI, its own case);
MWAA_OPS_TRY_CONF (JSON) is merged under each conf (the environment, a live task token)."""
import json
import os
import sys

import mwaa_ops_import
import mwaa_ops_metadata as m

extra = json.loads(os.environ.get("MWAA_OPS_TRY_CONF") or "{}")
out = {}
for arg in sys.argv[1:]:
    conf = json.loads(arg) if arg.startswith("{") else {"manifest": arg}
    case = conf.pop("case", None) or conf["manifest"]
    try:
        mwaa_ops_import.run_import({k: v for k, v in dict(extra, **conf).items() if v is not None})
        out[case] = "imported"
    except Exception as e:  # the task would push exactly this as its error
        out[case] = m.failure_text(e)
print(json.dumps(out))
