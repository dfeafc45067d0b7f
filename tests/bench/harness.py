"""What the benchmarks share: a local Lambda Runtime API, timing proxies in front of the
emulated AWS endpoints, function processes and their peak memory, the bed, package sizes.
Nothing here asserts: the benchmarks print figures."""
import http.client
import io
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
import uuid
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
# The benchmarks run as plain scripts (scripts/bench), outside pytest and its pythonpath
# (tests/pytest.ini): this is how they reach the bed's modules (airflow_bed's Airflow login).
# Appended, so that nothing of the bed shadows a module of the same name.
sys.path.append(str(ROOT / "tests" / "bed"))
from lambda_local import Function, QuietServer, RuntimeApi  # noqa: E402  (the bed's Lambda runtime)
T0 = time.time()


def log(msg):
    print(f"[bench {time.time() - T0:7.1f}s] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# Timing proxy: forwards HTTP to an upstream and records how long each request took there.
# ---------------------------------------------------------------------------------------------
class TimingProxy:
    def __init__(self, upstream):
        u = urllib.parse.urlparse(upstream)
        self.host, self.port = u.hostname, u.port
        self.lock = threading.Lock()
        self.intervals = []  # (start, end)
        local = threading.local()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _go(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else None
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in ("connection", "keep-alive", "transfer-encoding")}
                start = time.perf_counter()
                for attempt in range(2):
                    conn = getattr(local, "conn", None)
                    if conn is None:
                        conn = local.conn = http.client.HTTPConnection(proxy.host, proxy.port, timeout=30)
                        conn.connect()
                        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    try:
                        conn.request(self.command, self.path, body=body, headers=headers)
                        resp = conn.getresponse()
                        data = resp.read()
                        break
                    except (http.client.HTTPException, OSError):
                        conn.close()
                        local.conn = None
                        if attempt:
                            raise
                end = time.perf_counter()
                with proxy.lock:
                    proxy.intervals.append((start, end))
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in ("connection", "keep-alive", "transfer-encoding",
                                         "content-length", "date", "server"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _go

        self.server = QuietServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def waited(self, start, end):
        with self.lock:
            return sum(min(e, end) - max(s, start) for s, e in self.intervals if e > start and s < end)

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


# ---------------------------------------------------------------------------------------------
# Processes and helpers
# ---------------------------------------------------------------------------------------------
def pct(values, p):
    if not values:
        return float("nan")
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]


def wait_until(pred, timeout, step=0.05):
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return True
        time.sleep(step)
    return False


def post_json(url, body, method="POST"):
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read() or b"null")


def delete(url):
    req = urllib.request.Request(url, method="DELETE")
    with urllib.request.urlopen(req, timeout=30) as r:
        r.read()


def ms(x):
    return f"{x * 1000:.1f}"




def start_bed(airflow, workdir):
    """Starts tests/bed/bed.py (moto, the local MWAA control plane and the given Airflows,
    "" for none); returns the process (close its stdin to stop it) and its endpoints."""
    log(f"starting the bed (Airflow {airflow or 'none'}); logs in {workdir}")
    bed = subprocess.Popen([sys.executable, str(ROOT / "tests/bed/bed.py"), "--airflow", airflow],
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                           stderr=open(workdir / "bed.log", "ab"), text=True)
    line_box = []
    t = threading.Thread(target=lambda: line_box.append(bed.stdout.readline()), daemon=True)
    t.start()
    t.join(600)
    if not line_box or not line_box[0].strip():
        stop_bed(bed)
        raise SystemExit(f"the bed did not start; see {workdir / 'bed.log'}")
    info = json.loads(line_box[0])
    log(f"bed up: moto {info['moto_url']}, mwaa {info['mwaa_url']}")
    os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
                      AWS_REGION="us-east-1", AWS_DEFAULT_REGION="us-east-1")
    return bed, info


def stop_bed(bed):
    try:
        bed.stdin.close()
    except OSError:
        pass
    try:
        bed.wait(120)
    except subprocess.TimeoutExpired:
        bed.terminate()
        bed.wait(30)


def function_env(moto_url, mwaa_url, name, **settings):
    """A function process's environment: the emulated endpoints, test credentials, the
    variables Lambda sets, and the function's own settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "AIRFLOW"))}
    env.update(AWS_ENDPOINT_URL=moto_url, AWS_ENDPOINT_URL_MWAA=mwaa_url,
               AWS_REGION="us-east-1", AWS_DEFAULT_REGION="us-east-1",
               AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
               AWS_LAMBDA_FUNCTION_NAME=name, AWS_LAMBDA_FUNCTION_VERSION="$LATEST",
               AWS_LAMBDA_FUNCTION_MEMORY_SIZE="128", AWS_LAMBDA_LOG_FORMAT="JSON",
               AWS_EC2_METADATA_DISABLED="true", **settings)
    return env


def zipped_size(path, name):
    """Bytes of a deployment zip holding `path` as `name` (deflated, like sam build)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        z.write(path, name)
    return len(buf.getvalue())


def zipped_with_boto3(handler):
    """Bytes of a deployment zip holding the handler and boto3 with its dependencies, as
    AWS advises for a pinned SDK version (the runtime's own boto3 changes under you)."""
    import boto3
    site = Path(boto3.__file__).resolve().parents[1]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        z.write(handler, "lambda_function.py")
        for package in ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six.py"):
            root = site / package
            for f in ([root] if root.is_file() else sorted(root.rglob("*"))):
                if f.is_file() and "__pycache__" not in f.parts:
                    z.write(f, str(f.relative_to(site)))
    return len(buf.getvalue())


def package_rows(binary, baseline):
    """The deployment-package rows of a report: (figure, Rust, baseline)."""
    return [("deployment package, zipped (the baseline's boto3 comes with the runtime)",
             kib(zipped_size(binary, "bootstrap")), kib(zipped_size(baseline, "lambda_function.py"))),
            ("deployment package, zipped, the baseline with boto3 bundled (pinned)", "",
             kib(zipped_with_boto3(baseline)))]


def kib(n):
    return f"{n / 1024:,.0f} KiB"


def cold(fn, runs, make_event, workdir):
    """`runs` fresh processes, each handed one event queued before its spawn: spawn -> ready
    for the first event (first GET /next), spawn -> first response."""
    inits, firsts, oks = [], [], 0
    for i in range(runs):
        api = RuntimeApi(retries=0)
        try:
            api.submit(make_event(i), f"cold-{i}")
            t0 = time.perf_counter()
            p = fn.spawn(api.address, workdir / f"{fn.label}-cold.log")
            got = api.wait_done(1, 60)
            fn.kill(p)
            if got and api.next_times:
                inits.append(api.next_times[0] - t0)
                firsts.append(api.done[0]["answered"] - t0)
                oks += api.done[0]["ok"]
        finally:
            api.stop()
    return {"init": inits, "first": firsts, "ok": oks}


def warm(fn, n, make_event, workdir, proxies):
    """One process, a warm-up event, then `n` events one after another. Per event: end to
    end (handed out -> response), the time spent waiting on each proxied endpoint, the time
    without each, and `own`: without any of them."""
    api = RuntimeApi(retries=0)
    try:
        p = fn.spawn(api.address, workdir / f"{fn.label}-warm.log")
        api.submit(make_event(-1), "warm-up")
        # Not timed, but counted: a redelivery run's warm-up is a real first delivery.
        fails = 0 if api.wait_done(1, 60) and api.done[0]["ok"] else 1
        e2e, own, replies = [], [], []
        waits = {name: [] for name in proxies}
        without = {name: [] for name in proxies}
        for i in range(n):
            api.reset()
            api.submit(make_event(i), f"warm-{i}")
            if not api.wait_done(1, 60):
                fails += 1
                continue
            rec = api.done[0]
            fails += not rec["ok"]
            replies.append(rec["body"])
            a, b = rec["handed_out"], rec["answered"]
            e2e.append(b - a)
            rest = b - a
            for name, proxy in proxies.items():
                w = proxy.waited(a, b)
                waits[name].append(w)
                without[name].append(b - a - w)
                rest -= w
            own.append(rest)
        rss = fn.kill(p)
        return {"e2e": e2e, "waits": waits, "without": without, "own": own, "fails": fails,
                "rss_kb": rss, "replies": replies}
    finally:
        fn.kill_all()
        api.stop()


def timing_rows(r, p, cold_runs, warm_runs, first, waits):
    """The rows every function benchmark has, from two `cold` + `warm` results ("cold",
    "warm" keys): cold init and first answer, warm latency with each proxied wait named in
    `waits` ({proxy name: what it stands for}), and without them all; max RSS."""
    import statistics
    med = statistics.median
    rows = []

    def row(name, f):
        rows.append((name, f(r), f(p)))

    row(f"cold: spawn -> ready for the first event, ms (median of {cold_runs})",
        lambda x: ms(med(x["cold"]["init"])) if x["cold"]["init"] else "n/a")
    row(f"cold: spawn -> {first}, ms", lambda x: ms(med(x["cold"]["first"])) if x["cold"]["first"] else "n/a")
    row(f"warm per event, end to end, ms median / p90 (N={warm_runs})",
        lambda x: f"{ms(med(x['warm']['e2e']))} / {ms(pct(x['warm']['e2e'], 90))}")
    for name, what in waits.items():
        row(f"warm, of which waiting on {what}, ms median",
            lambda x, name=name: ms(med(x["warm"]["waits"][name])))
    if waits:
        row("warm, excluding the AWS waits, ms median / p90",
            lambda x: f"{ms(med(x['warm']['own']))} / {ms(pct(x['warm']['own'], 90))}")
    row("max RSS, warm process, MiB", lambda x: f"{(x['warm']['rss_kb'] or 0) / 1024:.1f}")
    row("failed invocations (cold + warm)",
        lambda x: str(x["warm"]["fails"] + cold_runs - x["cold"]["ok"]))
    return rows


def print_table(title, column, rows):
    """A Markdown table: figure | `column` (Rust) | Python baseline."""
    w0 = max(len(a) for a, _, _ in rows)
    w1 = max(len(column), *(len(b) for _, b, _ in rows))
    print(f"{title}; load avg {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"| {'figure'.ljust(w0)} | {column.rjust(w1)} | Python baseline |")
    print(f"|{'-' * (w0 + 2)}|{'-' * (w1 + 1)}:|----------------:|")
    for a, b, c in rows:
        print(f"| {a.ljust(w0)} | {b:>{w1}} | {c:>15} |")
    sys.stdout.flush()


def function_args(doc, binary, warm, redeliver, **extra):
    """The command line of a function benchmark: --binary (default: the release build of
    `binary`), --warm, --cold, --redeliver, --python, and `extra` ({flag: default}). Returns
    (args, binary path, build profile); exits when the binary is missing."""
    import argparse
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--binary", default=os.path.expanduser(f"~/.cache/mwaa-ops/target/release/{binary}"))
    ap.add_argument("--warm", type=int, default=warm)
    ap.add_argument("--cold", type=int, default=5)
    ap.add_argument("--redeliver", type=int, default=redeliver)
    ap.add_argument("--python", default=sys.executable, help="interpreter for the baseline")
    for flag, default in extra.items():
        ap.add_argument(flag, type=type(default), default=default)
    args = ap.parse_args()
    path = Path(args.binary)
    if not path.exists():
        raise SystemExit(f"no binary at {path}; build it (see scripts/bench)")
    return args, path, "release" if "/release/" in str(path) else "debug"


class BedSession:
    """The bed for one benchmark run, and the functions and proxies started on it, all
    stopped on the way out:  with BedSession("", workdir) as run: run.info, run.proxy(url)."""

    def __init__(self, airflow, workdir):
        self.airflow, self.workdir = airflow, workdir
        self.bed, self.info, self.functions, self.proxies = None, None, [], []

    def __enter__(self):
        self.bed, self.info = start_bed(self.airflow, self.workdir)
        return self

    def proxy(self, upstream):
        self.proxies.append(TimingProxy(upstream))
        return self.proxies[-1]

    def function(self, label, argv, env):
        self.functions.append(Function(label, argv, env))
        return self.functions[-1]

    def __exit__(self, *exc):
        for fn in self.functions:
            fn.kill_all()
        for p in self.proxies:
            p.stop()
        stop_bed(self.bed)
        return False
