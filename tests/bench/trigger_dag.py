"""Benchmark: trigger-dag (Rust) vs a minimal boto3 Python handler (the baseline).

    .bed/venv/bin/python tests/bench/trigger_dag.py [--binary PATH] [--burst 1000]
        [--warm 100] [--cold 5] [--concurrency 10] [--throttle-rate 0.2] [--dup-rate 0.05]

Prints figures, asserts nothing. Starts the bed (moto + Airflow 2.10.3 + local MWAA control
plane), a small Lambda Runtime API emulator per function, and timing proxies in front of the
MWAA and moto endpoints (to split "waiting on an endpoint" from the function's own time).
Everything binds 127.0.0.1 on free ports and is stopped at the end, also on failure.

Figures, per function:
- cold init: spawn -> first GET /invocation/next (ready), and spawn -> first response
  (the first event is queued before the spawn); median over --cold fresh processes.
- warm: N sequential events to one process; end-to-end per event (runtime hands the event
  out -> response posted), the part spent waiting on MWAA, and the rest (own time; also
  without moto waits: trigger-dag publishes a "DAG Run Started" event to EventBridge, the
  baseline does not).
- max RSS (VmHWM) of the warm process and the largest of the burst processes.
- burst: --burst arrivals (plus --dup-rate re-deliveries) queued at once, served by
  --concurrency processes, throttling injected on the MWAA control plane (--throttle-rate x
  arrivals ThrottlingException answers, in pulses); failed invocations are re-queued twice
  (Lambda async retries), then counted as failed (DLQ). Runs are counted in Airflow.
"""
import argparse
import http.client
import json
import os
import queue
import random
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
import uuid
import base64
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
ENV_NAME = "bench-env"
BUCKET = "landing-zone"
HELD_BUCKET = "mwaa-ops-bench-held"
DAG = "bed_smoke"
TIMEOUT_S = 60  # the template's function timeout
T0 = time.time()


def log(msg):
    print(f"[bench {time.time() - T0:7.1f}s] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# Timing proxy: forwards HTTP to an upstream and records how long each request took there.
# ---------------------------------------------------------------------------------------------
class QuietServer(ThreadingHTTPServer):
    """127.0.0.1 server: no Nagle (no 40 ms delayed-ACK stalls), no tracebacks for clients
    that went away (a killed function process)."""
    daemon_threads = True

    def get_request(self):
        conn, addr = super().get_request()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn, addr

    def handle_error(self, request, client_address):
        pass


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
# Lambda Runtime API emulator (the 3 calls a runtime makes), with Lambda-async-like retries.
# ---------------------------------------------------------------------------------------------
class RuntimeApi:
    def __init__(self, retries=2):
        self.retries = retries
        self.pending = queue.Queue()
        self.lock = threading.Lock()
        self.inflight = {}   # request id -> record
        self.done = []       # records with outcome
        self.first_next = {}  # pid-less: time of first /next per connection client port
        self.next_times = []
        self.finished = threading.Condition(self.lock)
        self.stopping = False
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _reply(self, status, body=b"", headers=None):
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                if not self.path.endswith("/runtime/invocation/next"):
                    return self._reply(404, b'{"message":"not found"}')
                now = time.perf_counter()
                with api.lock:
                    api.next_times.append(now)
                while True:
                    if api.stopping:
                        return self._reply(500, b'{"message":"stopping"}')
                    try:
                        rec = api.pending.get(timeout=0.5)
                        break
                    except queue.Empty:
                        continue
                rid = str(uuid.uuid4())
                rec["request_id"] = rid
                rec["handed_out"] = time.perf_counter()
                with api.lock:
                    api.inflight[rid] = rec
                deadline_ms = int((time.time() + TIMEOUT_S) * 1000)
                self._reply(200, json.dumps(rec["event"]).encode(), {
                    "Lambda-Runtime-Aws-Request-Id": rid,
                    "Lambda-Runtime-Deadline-Ms": str(deadline_ms),
                    "Lambda-Runtime-Invoked-Function-Arn":
                        "arn:aws:lambda:us-east-1:123456789012:function:bench",
                    "Lambda-Runtime-Trace-Id": "Root=1-00000000-000000000000000000000000"})

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                parts = self.path.rstrip("/").split("/")
                now = time.perf_counter()
                if len(parts) >= 2 and parts[-1] in ("response", "error"):
                    with api.lock:
                        rec = api.inflight.pop(parts[-2], None)
                    if rec is None:
                        return self._reply(400, b'{"message":"unknown request id"}')
                    rec["answered"] = now
                    rec["ok"] = parts[-1] == "response"
                    rec["body"] = body[:2000].decode(errors="replace")
                    rec["attempt"] = rec.get("attempt", 0)
                    if not rec["ok"] and rec["attempt"] < api.retries:
                        api.pending.put({"event": rec["event"], "key": rec["key"],
                                         "attempt": rec["attempt"] + 1, "queued": now})
                    with api.lock:
                        api.done.append(rec)
                        api.finished.notify_all()
                    return self._reply(202, b'{"status":"OK"}')
                if parts[-1] == "error":  # init error
                    sys.stderr.write(f"init error: {body[:500]!r}\n")
                    return self._reply(202, b'{"status":"OK"}')
                return self._reply(404, b'{"message":"not found"}')

        self.server = QuietServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def submit(self, event, key):
        self.pending.put({"event": event, "key": key, "attempt": 0, "queued": time.perf_counter()})

    def wait_done(self, count, timeout):
        """Waits until `count` final outcomes (success, or error after the last retry)."""
        end = time.time() + timeout
        with self.lock:
            while self._finals() < count and time.time() < end:
                self.finished.wait(0.5)
            return self._finals()

    def _finals(self):
        return sum(1 for r in self.done if r["ok"] or r["attempt"] >= self.retries)

    def reset(self):
        with self.lock:
            self.done.clear()
            self.next_times.clear()

    def stop(self):
        self.stopping = True
        self.server.shutdown()
        self.server.server_close()


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------
SAMPLE = json.loads((ROOT / "events" / "s3-object-created.json").read_text())


def make_event(key, n):
    ev = json.loads(json.dumps(SAMPLE))
    ev["id"] = str(uuid.uuid4())
    ev["time"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    ev["detail"]["bucket"]["name"] = BUCKET
    obj = ev["detail"]["object"]
    obj["key"] = key
    obj.pop("version-id", None)
    obj["sequencer"] = f"{int(time.time() * 1e6):016X}{n:08X}"
    return ev


def pct(values, p):
    if not values:
        return float("nan")
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]


def vm_hwm_kb(pid):
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


class Function:
    """How to start one implementation under a given runtime API."""

    def __init__(self, label, argv, env):
        self.label, self.argv, self.env = label, argv, env
        self.procs = []

    def spawn(self, runtime_address, log_path):
        env = dict(self.env, AWS_LAMBDA_RUNTIME_API=runtime_address)
        out = open(log_path, "ab")
        p = subprocess.Popen(self.argv, env=env, stdin=subprocess.DEVNULL, stdout=out,
                             stderr=subprocess.STDOUT, start_new_session=True)
        out.close()
        self.procs.append(p)
        return p

    def kill(self, p):
        rss = vm_hwm_kb(p.pid)
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(5)
        if p in self.procs:
            self.procs.remove(p)
        return rss

    def kill_all(self):
        for p in list(self.procs):
            self.kill(p)


def wait_until(pred, timeout, step=0.05):
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return True
        time.sleep(step)
    return False


# ---------------------------------------------------------------------------------------------
# Phases
# ---------------------------------------------------------------------------------------------
def cold(fn, runs, tag, workdir, mwaa_proxy):
    inits, firsts, oks = [], [], 0
    for i in range(runs):
        api = RuntimeApi(retries=0)
        try:
            key = f"bench/{tag}/{fn.label}/cold-{i}.csv"
            api.submit(make_event(key, i), key)
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


def warm(fn, n, tag, workdir, mwaa_proxy, moto_proxy):
    api = RuntimeApi(retries=0)
    try:
        p = fn.spawn(api.address, workdir / f"{fn.label}-warm.log")
        key = f"bench/{tag}/{fn.label}/warmup.csv"
        api.submit(make_event(key, 0), key)
        api.wait_done(1, 60)
        e2e, mwaa, own, own_all, fails = [], [], [], [], 0
        for i in range(n):
            api.reset()
            key = f"bench/{tag}/{fn.label}/warm-{i}.csv"
            api.submit(make_event(key, i + 1), key)
            if not api.wait_done(1, 60):
                fails += 1
                continue
            rec = api.done[0]
            if not rec["ok"]:
                fails += 1
            a, b = rec["handed_out"], rec["answered"]
            m = mwaa_proxy.waited(a, b)
            s = moto_proxy.waited(a, b)
            e2e.append(b - a)
            mwaa.append(m)
            own.append(b - a - m)
            own_all.append(b - a - m - s)
        rss = fn.kill(p)
        return {"e2e": e2e, "mwaa": mwaa, "own": own, "own_all": own_all, "fails": fails, "rss_kb": rss}
    finally:
        fn.kill_all()
        api.stop()


def burst(fn, n, dup_rate, concurrency, throttle_rate, tag, workdir, mwaa_url, time_limit):
    api = RuntimeApi(retries=2)
    stop = threading.Event()
    injected = [0]
    budget = int(throttle_rate * n)

    def pulses():  # throttling in pulses while the burst runs
        while not stop.is_set() and injected[0] < budget:
            k = min(3, budget - injected[0])
            post_json(f"{mwaa_url}/_bed/faults", {"operation": "*", "kind": "throttle", "count": k})
            injected[0] += k
            stop.wait(0.3)

    procs = []
    try:
        rng = random.Random(7)
        keys = [f"bench/{tag}/{fn.label}/burst/{i:05d}.csv" for i in range(n)]
        events = [(make_event(k, i), k) for i, k in enumerate(keys)]
        deliveries = list(events) + [e for e in events if rng.random() < dup_rate]
        rng.shuffle(deliveries)
        for c in range(concurrency):
            procs.append(fn.spawn(api.address, workdir / f"{fn.label}-burst.log"))
        # all ready (first /next seen) before the clock starts
        wait_until(lambda: len(api.next_times) >= concurrency, 60)
        delete(f"{mwaa_url}/_bed/faults")
        delete(f"{mwaa_url}/_bed/calls")
        t0 = time.perf_counter()
        th = threading.Thread(target=pulses, daemon=True)
        th.start()
        for ev, k in deliveries:
            api.submit(ev, k)
        got = api.wait_done(len(deliveries), time_limit)
        wall = time.perf_counter() - t0
        stop.set()
        th.join(5)
        rss = max((fn.kill(p) or 0) for p in procs)
        finals = [r for r in api.done if r["ok"] or r["attempt"] >= api.retries]
        failed = [r for r in finals if not r["ok"]]
        retried = sum(1 for r in api.done if not r["ok"] and r["attempt"] < api.retries)
        delete(f"{mwaa_url}/_bed/faults")
        with urllib.request.urlopen(f"{mwaa_url}/_bed/calls", timeout=60) as r:
            calls = json.loads(r.read())
        throttled = sum(1 for c in calls if c.get("fault") == "throttle")
        return {"unfinished": len(deliveries) - got, "time_limit": time_limit, "throttled": throttled,
                "mwaa_calls": len(calls), "keys": set(keys), "deliveries": len(deliveries), "answered": got, "wall": wall,
                "failed": len(failed), "retried_invocations": retried, "rss_kb": rss,
                "throttles_injected": injected[0],
                "failed_sample": failed[0]["body"][:300] if failed else ""}
    finally:
        stop.set()
        fn.kill_all()
        api.stop()


def post_json(url, body, method="POST"):
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read() or b"null")


def delete(url):
    req = urllib.request.Request(url, method="DELETE")
    with urllib.request.urlopen(req, timeout=30) as r:
        r.read()


def airflow_runs(af):
    """Every run of DAG in the bed Airflow: list of (run_id, conf key)."""
    auth = base64.b64encode(f"{af['username']}:{af['password']}".encode()).decode()
    out, offset = [], 0
    for _ in range(10000):
        url = f"{af['base_url']}{af['api_prefix']}/dags/{DAG}/dagRuns?limit=100&offset={offset}&order_by=dag_run_id"
        req = urllib.request.Request(url, headers={"Authorization": f"Basic {auth}"})
        with urllib.request.urlopen(req, timeout=60) as r:
            page = json.loads(r.read())["dag_runs"]
        out += [(d["dag_run_id"], (d.get("conf") or {}).get("key")) for d in page]
        if len(page) < 100:
            return out
        offset += 100
    return out


def set_paused(af, paused):
    auth = base64.b64encode(f"{af['username']}:{af['password']}".encode()).decode()
    req = urllib.request.Request(
        f"{af['base_url']}{af['api_prefix']}/dags/{DAG}?update_mask=is_paused",
        data=json.dumps({"is_paused": paused}).encode(), method="PATCH",
        headers={"Authorization": f"Basic {auth}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        r.read()


# ---------------------------------------------------------------------------------------------
def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--binary", default=os.path.expanduser(
        "~/.cache/mwaa-ops/target/release/trigger-dag"))
    ap.add_argument("--burst", type=int, default=1000)
    ap.add_argument("--warm", type=int, default=100)
    ap.add_argument("--cold", type=int, default=5)
    ap.add_argument("--concurrency", type=int, default=10)
    ap.add_argument("--throttle-rate", type=float, default=0.2)
    ap.add_argument("--dup-rate", type=float, default=0.05)
    ap.add_argument("--burst-time-limit", type=float, default=0,
                    help="seconds a burst may take (default max(300, 1.5 s x arrivals))")
    ap.add_argument("--airflow", default="2.10.3")
    ap.add_argument("--python", default=sys.executable, help="interpreter for the baseline")
    args = ap.parse_args()
    binary = Path(args.binary)
    if not binary.exists():
        raise SystemExit(f"no binary at {binary}; build it (see --help)")
    profile = "release" if "/release/" in str(binary) else ("debug" if "/debug/" in str(binary) else "?")

    import boto3
    from botocore.config import Config

    bed = proxies = None
    workdir = Path(os.environ.get("BENCH_WORKDIR") or f"/tmp/mwaa-ops-bench-{os.getpid()}")
    workdir.mkdir(parents=True, exist_ok=True)
    fns = []
    try:
        log(f"starting the bed (Airflow {args.airflow}); logs in {workdir}")
        bed = subprocess.Popen([sys.executable, str(ROOT / "tests/bed/bed.py"), "--airflow", args.airflow],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=open(workdir / "bed.log", "ab"), text=True)
        line_box = []
        t = threading.Thread(target=lambda: line_box.append(bed.stdout.readline()), daemon=True)
        t.start()
        t.join(600)
        if not line_box or not line_box[0].strip():
            raise SystemExit(f"the bed did not start; see {workdir / 'bed.log'}")
        info = json.loads(line_box[0])
        af = info["airflows"][0]
        log(f"bed up: moto {info['moto_url']}, mwaa {info['mwaa_url']}")
        os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
                          AWS_REGION="us-east-1", AWS_DEFAULT_REGION="us-east-1")
        mwaa = boto3.client("mwaa", endpoint_url=info["mwaa_url"], region_name="us-east-1",
                            config=Config(inject_host_prefix=False))
        mwaa.create_environment(
            Name=ENV_NAME, AirflowVersion=args.airflow,
            ExecutionRoleArn="arn:aws:iam::123456789012:role/mwaa-exec",
            SourceBucketArn="arn:aws:s3:::mwaa-bucket", DagS3Path="dags",
            NetworkConfiguration={"SubnetIds": ["subnet-aaaa1111", "subnet-bbbb2222"],
                                  "SecurityGroupIds": ["sg-0123456789"]})
        if not wait_until(lambda: mwaa.get_environment(Name=ENV_NAME)["Environment"]["Status"]
                          == "AVAILABLE", 120, 0.2):
            raise SystemExit("environment never AVAILABLE")
        s3 = boto3.client("s3", endpoint_url=info["moto_url"], region_name="us-east-1")
        s3.create_bucket(Bucket=HELD_BUCKET)
        set_paused(af, True)  # runs are created, not executed: keeps the scheduler quiet
        mwaa_proxy = TimingProxy(info["mwaa_url"])
        moto_proxy = TimingProxy(info["moto_url"])
        proxies = (mwaa_proxy, moto_proxy)
        routes = json.dumps([{"name": "bench", "bucket": BUCKET, "prefix": "bench/",
                              "environment": ENV_NAME, "dag": DAG}])
        base_env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "AIRFLOW"))}
        base_env.update(
            AWS_ENDPOINT_URL=moto_proxy.url, AWS_ENDPOINT_URL_MWAA=mwaa_proxy.url,
            AWS_REGION="us-east-1", AWS_DEFAULT_REGION="us-east-1",
            AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
            ROUTES=routes, HELD_BUCKET=HELD_BUCKET, AWS_LAMBDA_FUNCTION_NAME="trigger-dag",
            AWS_LAMBDA_FUNCTION_VERSION="$LATEST", AWS_LAMBDA_FUNCTION_MEMORY_SIZE="128",
            AWS_LAMBDA_LOG_FORMAT="JSON", AWS_EC2_METADATA_DISABLED="true")
        rust = Function("rust", [str(binary)], base_env)
        py = Function("python", [args.python, str(HERE / "baseline_trigger_dag.py")], base_env)
        fns = [rust, py]
        tag = time.strftime("%H%M%S")
        results = {}
        for fn in fns:
            log(f"{fn.label}: cold x{args.cold}")
            c = cold(fn, args.cold, tag, workdir, mwaa_proxy)
            log(f"{fn.label}: warm x{args.warm}")
            w = warm(fn, args.warm, tag, workdir, mwaa_proxy, moto_proxy)
            results[fn.label] = {"cold": c, "warm": w}
        before = {k for _, k in airflow_runs(af)}
        for fn in fns:
            log(f"{fn.label}: burst of {args.burst}")
            b = burst(fn, args.burst, args.dup_rate, args.concurrency, args.throttle_rate, tag,
                      workdir, info["mwaa_url"], args.burst_time_limit or max(300, 1.5 * args.burst))
            results[fn.label]["burst"] = b
        runs = airflow_runs(af)
        for fn in fns:
            b = results[fn.label]["burst"]
            keys = [k for _, k in runs if k in b["keys"]]
            counts = {}
            for k in keys:
                counts[k] = counts.get(k, 0) + 1
            b["created"] = len(keys)
            b["lost"] = len(b["keys"] - set(counts))
            b["duplicated"] = sum(v - 1 for v in counts.values())
        report(results, args, profile, binary)
    finally:
        for fn in fns:
            fn.kill_all()
        if proxies:
            for p in proxies:
                p.stop()
        if bed:
            try:
                bed.stdin.close()
            except OSError:
                pass
            try:
                bed.wait(120)
            except subprocess.TimeoutExpired:
                bed.terminate()
                bed.wait(30)


def ms(x):
    return f"{x * 1000:.1f}"


def report(results, args, profile, binary):
    r, p = results["rust"], results["python"]
    rows = []

    def row(name, f):
        rows.append((name, f(r), f(p)))

    med = statistics.median
    row(f"cold: spawn -> ready for 1st event, ms (median of {args.cold})",
        lambda x: ms(med(x["cold"]["init"])) if x["cold"]["init"] else "n/a")
    row("cold: spawn -> 1st response (incl. MWAA calls), ms",
        lambda x: ms(med(x["cold"]["first"])) if x["cold"]["first"] else "n/a")
    row(f"warm end-to-end per event, ms median / p90 (N={args.warm})",
        lambda x: f"{ms(med(x['warm']['e2e']))} / {ms(pct(x['warm']['e2e'], 90))}")
    row("warm waiting on MWAA endpoint, ms median",
        lambda x: ms(med(x["warm"]["mwaa"])))
    row("warm excl. MWAA wait, ms median / p90",
        lambda x: f"{ms(med(x['warm']['own']))} / {ms(pct(x['warm']['own'], 90))}")
    row("warm excl. MWAA and moto waits, ms median / p90",
        lambda x: f"{ms(med(x['warm']['own_all']))} / {ms(pct(x['warm']['own_all'], 90))}")
    row("warm failed invocations", lambda x: str(x["warm"]["fails"] + args.cold - x["cold"]["ok"]))
    row("max RSS, warm process, MiB", lambda x: f"{(x['warm']['rss_kb'] or 0) / 1024:.1f}")
    row(f"max RSS, burst processes (largest of {args.concurrency}), MiB",
        lambda x: f"{(x['burst']['rss_kb'] or 0) / 1024:.1f}")
    row("burst: arrivals / deliveries (incl. re-deliveries)",
        lambda x: f"{len(x['burst']['keys'])} / {x['burst']['deliveries']}")
    row("burst: MWAA calls / answered ThrottlingException",
        lambda x: f"{x['burst']['mwaa_calls']} / {x['burst']['throttled']}")
    row("burst: runs created in Airflow", lambda x: str(x["burst"]["created"]))
    row("burst: deliveries not answered within the time limit",
        lambda x: f"{x['burst']['unfinished']} (limit {x['burst']['time_limit']:.0f} s)")
    row("burst: lost (arrival without a run at the end)", lambda x: str(x["burst"]["lost"]))
    row("burst: duplicated runs", lambda x: str(x["burst"]["duplicated"]))
    row("burst: invocations failed after 2 retries (DLQ)", lambda x: str(x["burst"]["failed"]))
    row("burst: invocations retried by 'Lambda'", lambda x: str(x["burst"]["retried_invocations"]))
    row("burst: wall time, s", lambda x: f"{x['burst']['wall']:.1f}")
    row("burst: arrivals per second", lambda x: f"{len(x['burst']['keys']) / x['burst']['wall']:.1f}")
    w0 = max(len(a) for a, _, _ in rows)
    title = (f"trigger-dag benchmark: Rust ({profile} build, {binary}) vs Python baseline "
             f"(boto3, tests/bench/baseline_trigger_dag.py); Airflow {args.airflow}, "
             f"concurrency {args.concurrency}, local emulated Runtime API, "
             f"load avg {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(title)
    print(f"| {'figure'.ljust(w0)} | trigger-dag (Rust) | Python baseline |")
    print(f"|{'-' * (w0 + 2)}|-------------------:|----------------:|")
    for a, b, c in rows:
        print(f"| {a.ljust(w0)} | {b:>18} | {c:>15} |")
    for label, x in (("rust", r), ("python", p)):
        if x["burst"]["failed_sample"]:
            print(f"{label}: a failed invocation said: {x['burst']['failed_sample']}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
