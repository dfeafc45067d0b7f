"""Real Airflow (2.10.3, 3.0.6 or 3.2.1; the other 2.x from scripts/metadata-matrix) on a throw-away
PostgreSQL, for the test bed.

Stdlib only: runs under the bed venv. Airflow itself runs from .bed/airflow-<version>
(made by scripts/install). Everything binds 127.0.0.1 on free ports; whoever calls
start() calls stop(), also on failure (stop() is idempotent).

Manual use:  .bed/venv/bin/python tests/bed/airflow_bed.py 2.10.3   (Ctrl-C or EOF stops)
"""
from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DAGS = Path(__file__).resolve().parent / "dags"     # the bed's own DAGs
SUITE_DAGS = ROOT / "infra" / "dags"                # the DAGs the suite ships to environments
ADMIN = "admin"
# The Airflow versions MWAA accepts: the suite's one list (the functions embed it too).
VERSIONS_FILE = ROOT / "functions" / "common" / "airflow-versions.json"


def airflow_versions() -> dict:
    """{"default": newest, "versions": [{"version", "bed"}]}: "bed" is "per-commit" for the
    versions every bed starts and scripts/test runs, "matrix" for scripts/metadata-matrix."""
    return json.loads(VERSIONS_FILE.read_text())


def per_commit_versions() -> list:
    return [v["version"] for v in airflow_versions()["versions"] if v["bed"] == "per-commit"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_is_free(port: int) -> bool:
    """Nothing listens on it. SO_REUSEADDR as servers use, so our own client
    connections lingering in TIME_WAIT don't count."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def _tail(path: Path, n: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return ""


class Postgres:
    """A private PostgreSQL cluster: trust auth, fsync off, TCP on 127.0.0.1 only."""

    def __init__(self):
        self.port = None
        self.dir = None  # cluster dir (data, socket, log); removed by stop()
        self.workdir = None

    @staticmethod
    def bin_dir() -> Path:
        found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"),
                       key=lambda p: float(p.parent.parent.name))
        if not found:
            raise RuntimeError("no PostgreSQL server in /usr/lib/postgresql: run scripts/install")
        return found[-1].parent

    def _as_server_user(self) -> list:
        # initdb/postgres refuse to run as root: use Debian's postgres user then.
        return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    def start(self, workdir: Path) -> None:
        t0 = time.monotonic()
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        # A short path in the system temp dir: the postgres user must reach it (pytest's
        # tmp dirs are 0700 root) and the Unix socket path must stay under ~100 bytes.
        self.dir = Path(tempfile.mkdtemp(prefix="bed-pg-"))
        data, sock = self.dir / "data", self.dir / "sock"
        sock.mkdir()
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
            shutil.chown(sock, "postgres", "postgres")
        b, user = self.bin_dir(), self._as_server_user()
        subprocess.run(user + [str(b / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
                               "-E", "UTF8", "--locale=C", "--no-sync"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=self.dir)
        self.port = free_port()
        opts = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {sock} -c fsync=off"
        # Own session: a Ctrl-C in the terminal must not kill the server before stop().
        r = subprocess.run(user + [str(b / "pg_ctl"), "-D", str(data), "-l", str(self.dir / "postgres.log"),
                                   "-w", "-t", "60", "-o", opts, "start"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                           cwd=self.dir, start_new_session=True)
        if r.returncode != 0:
            raise RuntimeError(f"pg_ctl start failed: {r.stderr}\n{_tail(self.dir / 'postgres.log')}")
        self.start_seconds = time.monotonic() - t0

    def create_database(self, name: str) -> str:
        subprocess.run([str(self.bin_dir() / "createdb"), "-h", "127.0.0.1", "-p", str(self.port),
                        "-U", "postgres", name], check=True)
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        if self.dir is None:
            return
        data = self.dir / "data"
        pid_file = data / "postmaster.pid"
        if pid_file.exists():
            r = subprocess.run(self._as_server_user() + [str(self.bin_dir() / "pg_ctl"), "-D", str(data),
                                                         "-m", "fast", "-w", "-t", "30", "stop"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=self.dir)
            if r.returncode != 0 and pid_file.exists():
                try:  # pg_ctl gave up: kill the postmaster; its children exit with it
                    os.kill(int(pid_file.read_text().split()[0]), signal.SIGKILL)
                except (OSError, ValueError):
                    pass
        if self.workdir and (self.dir / "postgres.log").exists():
            shutil.copy(self.dir / "postgres.log", self.workdir / "postgres.log")  # keep it for debugging
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir = None


def _request(method: str, url: str, headers: dict | None = None, body=None, timeout: float = 15):
    """(status, parsed JSON or text) for any HTTP status; OSError only if no answer at all."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers=dict(headers or {}))
    if data is not None:
        req.add_header("Content-Type", "application/json")
    req.add_header("Accept", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            status, raw = resp.status, resp.read()
    except urllib.error.HTTPError as e:
        status, raw = e.code, e.read()
    try:
        return status, json.loads(raw or b"null")
    except ValueError:
        return status, raw.decode(errors="replace")


class LoginRefused(RuntimeError):
    """Airflow 3's token endpoint did not hand out a token (status and body as it answered)."""

    def __init__(self, status: int, body):
        super().__init__(f"token request failed: {status} {body}")
        self.status, self.body = status, body


def auth_headers(info: dict, timeout: float = 15) -> dict:
    """Authorization header for the REST API: the one Airflow login of the bed (the tests, the
    local MWAA control plane and the benchmarks all log in here).

    Airflow 2: HTTP basic (basic_auth backend, a FAB user). Airflow 3.0.6 (simple auth
    manager): POST {base_url}/auth/token with JSON {"username": ..., "password": ...}
    and Content-Type: application/json -> 201 {"access_token": "<JWT>"}; send it as a
    Bearer token. Tokens live [api_auth] jwt_expiration_time (default 24 h).
    Raises LoginRefused when no token comes back, OSError when nothing answers.
    """
    if info.get("auth") != "jwt":
        cred = base64.b64encode(f"{info['username']}:{info['password']}".encode()).decode()
        return {"Authorization": f"Basic {cred}"}
    status, body = _request("POST", info["token_url"], timeout=timeout,
                            body={"username": info["username"], "password": info["password"]})
    if status not in (200, 201) or not isinstance(body, dict) or "access_token" not in body:
        raise LoginRefused(status, body)
    return {"Authorization": f"Bearer {body['access_token']}"}


def dags_folder(folder: Path, sources) -> Path:
    """Make `folder`, an Airflow DAG folder holding every *.py of `sources` (a later source's
    file of the same name wins): the one way the bed and the tests give an Airflow its DAGs."""
    folder = Path(folder)
    folder.mkdir()
    for source in sources:
        for dag in sorted(Path(source).glob("*.py")):
            shutil.copy(dag, folder / dag.name)
    return folder


def api(info: dict, method: str, path: str, body=None, headers: dict | None = None):
    """Call {base_url}{api_prefix}{path}; returns (status, body)."""
    return _request(method, info["base_url"] + info["api_prefix"] + path,
                    headers if headers is not None else auth_headers(info), body)


def _proc_table() -> dict:
    """pid -> (ppid, session id, environ bytes) of every live, non-zombie process."""
    table = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
            fields = stat[stat.rindex(")") + 2:].split()  # the name may hold spaces
            if fields[0] == "Z":
                continue
            table[int(d.name)] = (int(fields[1]), int(fields[3]), (d / "environ").read_bytes())
        except (OSError, ValueError):
            pass
    return table


def family(sessions, env: str | None = None) -> list:
    """Live processes in the given sessions, or with env ("NAME=value") in their initial
    environment, plus all their descendants. Airflow's processes rename themselves
    (setproctitle can clobber /proc/PID/environ) and task runners make new process
    groups or sessions, so no single test finds them all."""
    table, needle = _proc_table(), env.encode() if env else None
    found = {pid for pid, (_, sid, environ) in table.items()
             if sid in sessions or (needle and needle in environ.split(b"\0"))}
    found.discard(os.getpid())
    grew = True
    while grew:
        more = {pid for pid, (ppid, _, _) in table.items() if ppid in found} - found
        found |= more
        grew = bool(more)
    return sorted(found)


def memory_mb(pids) -> tuple:
    """(sum of RSS, sum of PSS) in MB; PSS splits the pages forked workers share."""
    rss = pss = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Rss:"):
                    rss += int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss += int(line.split()[1])
        except OSError:
            pass
    return rss / 1024, pss / 1024


def boto_shim(workdir: Path) -> Path:
    """A folder to put on the Airflow processes' PYTHONPATH: the Airflow venvs have no boto3
    (MWAA's has), so they borrow the bed venv's boto3, botocore and s3transfer, nothing else --
    but jmespath, which botocore needs and Airflow 3's venv (unlike 2.x's) does not bring."""
    import boto3
    shim = workdir / "boto"
    shim.mkdir(exist_ok=True)
    site = Path(boto3.__file__).resolve().parents[1]
    for name in ("boto3", "botocore", "s3transfer", "jmespath"):
        if not (shim / name).exists():
            (shim / name).symlink_to(site / name)
    return shim


class Airflow:
    """triggerer: also run `airflow triggerer` (MWAA runs one; deferred tasks need it). Off by
    default: ~0.15 GB more, and only the tests of deferred tasks need it.

    execution_key: a bed IAM access key (tests/bed/iam_execution.py) the task processes sign
    their AWS calls with, as MWAA gives an environment's tasks its execution role; without
    one they inherit the caller's AWS variables."""

    def __init__(self, version: str, postgres: Postgres, dags_folder: Path, workdir: Path,
                 triggerer: bool = False, execution_key: str | None = None):
        self.version, self.major = version, int(version.split(".")[0])
        self.triggerer = triggerer
        self.execution_key = execution_key
        self.postgres, self.dags_folder, self.workdir = postgres, Path(dags_folder), Path(workdir)
        self.airflow = ROOT / ".bed" / f"airflow-{version}" / "bin" / "airflow"
        self.procs = []
        self.sessions = set()  # one session per server: remembered to find leftovers after stop()
        self._info = None
        self._headers = None

    def info(self) -> dict:
        return dict(self._info)

    def _env(self, home: Path, port: int, db_url: str, fernet: str) -> dict:
        # Only AIRFLOW__ variables configure it: drop any the caller's shell has.
        env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
        base_url = f"http://127.0.0.1:{port}"
        env.update({
            "AIRFLOW_HOME": str(home),
            "SCARF_ANALYTICS": "false", "DO_NOT_TRACK": "true",  # no network here
            "AIRFLOW__USAGE_DATA_COLLECTION__ENABLED": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "4",  # 2.x LocalExecutor forks that many workers up front
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags_folder),
            "AIRFLOW__CORE__FERNET_KEY": fernet,
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",  # a DAG may still ask for it
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": db_url,
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
        })
        if self.major == 2:
            env.update({
                "AIRFLOW__WEBSERVER__WEB_SERVER_HOST": "127.0.0.1",
                "AIRFLOW__WEBSERVER__WEB_SERVER_PORT": str(port),
                "AIRFLOW__WEBSERVER__BASE_URL": base_url,
                "AIRFLOW__WEBSERVER__WORKERS": "2",
                "AIRFLOW__WEBSERVER__SECRET_KEY": secrets.token_hex(16),
                # basic_auth for the REST API; session too, the UI needs it (else a warning each command).
                "AIRFLOW__API__AUTH_BACKENDS": "airflow.api.auth.backend.basic_auth,airflow.api.auth.backend.session",
                # New DAG files are found within a few seconds.
                "AIRFLOW__SCHEDULER__DAG_DIR_LIST_INTERVAL": "2",
                "AIRFLOW__SCHEDULER__MIN_FILE_PROCESS_INTERVAL": "2",
            })
        else:
            env.update({
                "AIRFLOW__API__HOST": "127.0.0.1",
                "AIRFLOW__API__PORT": str(port),
                "AIRFLOW__API__BASE_URL": base_url,
                "AIRFLOW__API__WORKERS": "1",
                "AIRFLOW__API__SECRET_KEY": secrets.token_hex(16),
                # Task processes talk to the api-server; scheduler and api-server share the secret.
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{base_url}/execution/",
                "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
                "AIRFLOW__CORE__AUTH_MANAGER":
                    "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN}:admin",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "2",
                "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "2",
            })
        if self.execution_key:
            # A credentials file rather than variables: use_execution_key can swap the role of
            # a running Airflow (each task process reads it when it first calls AWS).
            for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                         "AWS_PROFILE"):
                env.pop(name, None)
            env["AWS_SHARED_CREDENTIALS_FILE"] = str(self.workdir / "aws-credentials")
            self.use_execution_key(self.execution_key)
        return env

    def use_execution_key(self, key: str) -> None:
        """The tasks started from now on act as the role of ``key`` (started with one only)."""
        if not self.execution_key:
            raise RuntimeError("this Airflow was started without an execution key")
        self.execution_key = key
        path = self.workdir / "aws-credentials"
        path.write_text(f"[default]\naws_access_key_id = {key}\n"
                        "aws_secret_access_key = bed-execution-role\n")

    def _run(self, args: list, log: str) -> None:
        with open(self.workdir / log, "ab") as out:
            r = subprocess.run([str(self.airflow)] + args, env=self.env, cwd=self.workdir,
                               stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        if r.returncode != 0:
            raise RuntimeError(f"airflow {' '.join(args)} failed ({r.returncode}):\n{_tail(self.workdir / log)}")

    def _spawn(self, args: list, log: str) -> None:
        out = open(self.workdir / log, "ab")
        try:  # own process group each, so stop() can signal a server and its children
            self.procs.append((subprocess.Popen([str(self.airflow)] + args, env=self.env, cwd=self.workdir,
                                                stdout=out, stderr=subprocess.STDOUT,
                                                start_new_session=True), log))
            self.sessions.add(self.procs[-1][0].pid)
        finally:
            out.close()

    def start(self, timeout: float = 180) -> dict:
        t0 = time.monotonic()
        if not self.airflow.exists():
            raise RuntimeError(f"{self.airflow} missing: run scripts/install")
        self.workdir.mkdir(parents=True, exist_ok=True)
        home = self.workdir / "airflow-home"
        home.mkdir(exist_ok=True)
        try:
            db_url = self.postgres.create_database(
                f"airflow_{self.version.replace('.', '_')}_{secrets.token_hex(3)}")
            port, password = free_port(), secrets.token_hex(12)  # no leading "-" for argparse
            fernet = base64.urlsafe_b64encode(os.urandom(32)).decode()  # a Fernet key is 32 random bytes
            self.env = self._env(home, port, db_url, fernet)
            self.home = str(home)
            self._run(["db", "migrate"], "migrate.log")
            if self.major == 2:
                self._run(["users", "create", "--username", ADMIN, "--password", password, "--role", "Admin",
                           "--firstname", "Bed", "--lastname", "Admin", "--email", "admin@example.invalid"],
                          "users.log")
                self._spawn(["webserver"], "webserver.log")
                self._spawn(["scheduler", "--skip-serve-logs"], "scheduler.log")  # serve-logs binds 0.0.0.0
                if self.triggerer:
                    self._spawn(["triggerer", "--skip-serve-logs"], "triggerer.log")
            else:
                # The simple auth manager keeps its passwords in this file and only generates
                # one for a user missing from it: writing it first sets the admin's password.
                (home / "passwords.json").write_text(json.dumps({ADMIN: password}) + "\n")
                self._spawn(["api-server"], "api-server.log")
                self._spawn(["scheduler", "--skip-serve-logs"], "scheduler.log")
                self._spawn(["dag-processor"], "dag-processor.log")
                if self.triggerer:
                    self._spawn(["triggerer", "--skip-serve-logs"], "triggerer.log")
            self._info = {
                "version": self.version, "major": self.major,
                "base_url": f"http://127.0.0.1:{port}",
                "api_prefix": "/api/v1" if self.major == 2 else "/api/v2",
                "auth": "basic" if self.major == 2 else "jwt",
                "username": ADMIN, "password": password,
                "token_url": None if self.major == 2 else f"http://127.0.0.1:{port}/auth/token",
                "database_url": db_url, "fernet_key": fernet,
                "airflow_home": str(home), "logs": str(self.workdir),
            }
            self._wait_ready(t0 + timeout)
        except BaseException:
            self.stop()
            raise
        self.start_seconds = time.monotonic() - t0
        return self.info()

    def _check_alive(self) -> None:
        for p, log in self.procs:
            if p.poll() is not None:
                raise RuntimeError(f"{log[:-4]} exited with {p.returncode}:\n{_tail(self.workdir / log)}")

    def _wait_ready(self, deadline: float) -> None:
        last = None
        while time.monotonic() < deadline:
            self._check_alive()
            try:
                self._headers = auth_headers(self._info)
                status, body = api(self._info, "GET", "/dags?limit=1", headers=self._headers)
                if status == 200:
                    return
                last = f"{status} {body}"
            except (OSError, RuntimeError) as e:  # not listening yet / token route not up yet
                last = repr(e)
            time.sleep(1)
        raise TimeoutError(f"Airflow {self.version} REST API not ready: {last}")

    def wait_for_dag(self, dag_id: str, timeout: float = 60) -> dict:
        deadline, last = time.monotonic() + timeout, None
        while time.monotonic() < deadline:
            self._check_alive()
            status, body = api(self._info, "GET", f"/dags/{dag_id}", headers=self._headers)
            if status == 200:
                return body
            if status == 401:  # token expired: fetch a new one
                self._headers = auth_headers(self._info)
            last = f"{status} {body}"
            time.sleep(1)
        raise TimeoutError(f"DAG {dag_id} not known to Airflow {self.version}: {last}")

    def pids(self) -> list:
        """Every live process of this Airflow."""
        if not self.sessions:
            return []
        return family(self.sessions, f"AIRFLOW_HOME={self.home}")

    def stop(self, grace: float = 15) -> None:
        """SIGTERM each server's process group, then anything left with our AIRFLOW_HOME
        (task processes make their own groups), then SIGKILL. Idempotent."""
        def alive():
            return [p for p, _ in self.procs if p.poll() is None] or self.pids()

        def wait(seconds):
            deadline = time.monotonic() + seconds
            while alive() and time.monotonic() < deadline:
                time.sleep(0.2)

        for round_, (sig, seconds) in enumerate(((signal.SIGTERM, grace), (signal.SIGTERM, 3), (signal.SIGKILL, 5))):
            if not alive():
                break
            for p, _ in self.procs:
                try:
                    os.killpg(p.pid, sig)
                except OSError:
                    pass
            if round_ > 0:  # the servers had their chance to stop their children
                for pid in self.pids():
                    try:
                        os.kill(pid, sig)
                    except OSError:
                        pass
            wait(seconds)
        for p, _ in self.procs:
            p.wait()  # reap
        self.procs = []


def main() -> None:
    version = sys.argv[1] if len(sys.argv) > 1 else "2.10.3"
    workdir = Path(sys.argv[2]) if len(sys.argv) > 2 else Path(tempfile.mkdtemp(prefix=f"bed-airflow-{version}-"))
    pg = Postgres()
    af = Airflow(version, pg, DAGS, workdir)
    try:
        pg.start(workdir)
        info = af.start()
        print(json.dumps(info, indent=2))
        rss, pss = memory_mb(af.pids())
        print(f"postgres {pg.start_seconds:.1f} s, airflow {af.start_seconds:.1f} s to REST-ready, "
              f"{len(af.pids())} processes, {rss:.0f} MB RSS, {pss:.0f} MB PSS", flush=True)
        print("Ctrl-C or EOF on stdin stops it.", flush=True)
        try:
            sys.stdin.read()
        except KeyboardInterrupt:
            pass
    finally:
        af.stop()
        pg.stop()


if __name__ == "__main__":
    main()
