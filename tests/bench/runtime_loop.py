"""BASELINE support -- the minimal Lambda Runtime API loop the Python baselines run under
(what awslambdaric does for a Python Lambda): next -> handler -> response | error."""
import json
import os
import urllib.request


def serve(handler):
    """Calls handler(event, deadline) for each invocation; deadline leaves 3 s to report."""
    base = f"http://{os.environ['AWS_LAMBDA_RUNTIME_API']}/2018-06-01/runtime/invocation"
    while True:
        with urllib.request.urlopen(f"{base}/next") as r:
            request_id = r.headers["Lambda-Runtime-Aws-Request-Id"]
            deadline = int(r.headers["Lambda-Runtime-Deadline-Ms"]) / 1000 - 3.0
            event = json.loads(r.read())
        try:
            out, url = handler(event, deadline), f"{base}/{request_id}/response"
        except Exception as e:  # reported to the runtime like awslambdaric does
            out = {"errorType": type(e).__name__, "errorMessage": str(e)}
            url = f"{base}/{request_id}/error"
        req = urllib.request.Request(url, data=json.dumps(out).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
        urllib.request.urlopen(req).read()
