"""The one helper library for tests and benches that drive the real `dropbox-agent` binary.

- `Agent`: a bare `dropbox-agent run` with its own data directory (intake, claims, leases, crash points);
- `RestoreAgent`: an agent configured for real restores (modular CASA, an archive store, SMTP);
- the services the end-to-end tests start (nginx, the fault-injecting store, the ALMA archive stand-in, aiosmtpd),
  dropping requests as an outside system does, reading status files and the journal, CASA helpers.

Everything here synchronises by polling with a deadline; nothing sleeps for a fixed time to "let things
happen". Processes are started with subprocess.Popen and stopped by PID.
"""
from __future__ import annotations

import json
import os
import pathlib
import signal
import socket
import sqlite3
import subprocess
import threading
import time
from typing import Callable, Iterable

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
AGENT = pathlib.Path(os.environ.get("DROPBOX_AGENT_BIN") or ROOT / ".build/debug/dropbox-agent")
CASA_VENV = pathlib.Path(os.environ.get("DROPBOX_CASA_VENV", ROOT / ".cache/casa-venv"))
FIXTURE = pathlib.Path(os.environ.get("DROPBOX_FIXTURE_DIR", ROOT / ".cache/fixture"))
SERVICES = ROOT / "scripts/services"
MOUS_A = "uid://A001/X3f01/X1a5"
MOUS_B = "uid://A001/X3f01/X1b0"
TERMINAL = {"succeeded", "failed", "rejected", "cancelled"}
STATES = {"waiting", "queued", "running"} | TERMINAL
STATE_RANK = {"waiting": 1, "queued": 2, "running": 3, **{s: 4 for s in TERMINAL}}
RANK_NAME = {1: "waiting", 2: "queued", 3: "running", 4: "terminal"}


def agent_binary() -> pathlib.Path:
    """The agent under test: $DROPBOX_AGENT_BIN, else the debug build in the repository."""
    path = AGENT
    if not path.is_file() or not os.access(path, os.X_OK):
        raise AssertionError(f"agent binary {path} not found: run `swift build` in {ROOT} (or set DROPBOX_AGENT_BIN)")
    return path


def wait_until(predicate: Callable[[], object], timeout: float, what: str = "condition", interval: float = 0.02):
    """Polls `predicate` until it returns something truthy; fails with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


# ---------------------------------------------------------------------------------------------------------------
# Dropping requests the way an outside system does


def request_bytes(tag: str, mous: str = "uid://A001/X0/X0") -> bytes:
    """A valid native request, unique per `tag` (identical content would be linked, not run again)."""
    return json.dumps({"mous": mous, "requestId": f"bench-{tag}"}).encode()


def drop(spool: pathlib.Path, name: str, content: bytes) -> None:
    """Writes `.NAME.json.tmp` (ignored by the agent), then renames it to `NAME.json`."""
    temp = spool / f".{name}.json.tmp"
    with open(temp, "wb") as f:
        f.write(content)
    os.rename(temp, spool / f"{name}.json")


def drop_in_place(spool: pathlib.Path, name: str, content: bytes) -> None:
    """Writes `NAME.json` directly (like scp): the agent sees CLOSE_WRITE."""
    with open(spool / f"{name}.json", "wb") as f:
        f.write(content)


def read_status(spool: pathlib.Path, name: str) -> dict | None:
    try:
        return json.loads((spool / f"{name}.status.json").read_bytes())
    except FileNotFoundError:
        return None


def states(spool: pathlib.Path, names: Iterable[str]) -> dict[str, str | None]:
    out = {}
    for n in names:
        doc = read_status(spool, n)
        out[n] = doc.get("state") if doc else None
    return out


def all_terminal(spool: pathlib.Path, names: Iterable[str]) -> bool:
    for n in names:
        doc = read_status(spool, n)
        if not doc or doc.get("state") not in TERMINAL:
            return False
    return True


def journal_rows(data_dir: pathlib.Path, sql: str, args: tuple = ()) -> list[tuple]:
    """Rows from an agent's journal (read-only, so a running agent is not disturbed)."""
    path = data_dir / "journal.sqlite"
    uri = f"file:{path}?mode=ro"
    with sqlite3.connect(uri, uri=True, timeout=10) as db:
        return db.execute(sql, args).fetchall()


# ---------------------------------------------------------------------------------------------------------------
# Agent processes


class Agent:
    """One `dropbox-agent run` process with its own data directory and configuration file."""

    def __init__(self, base: pathlib.Path, spool: pathlib.Path, label: str = "agent", *, settle: float = 0,
                 rescan: float = 30, max_concurrent: int = 2, lease: float = 30, extra: dict | None = None,
                 binary: pathlib.Path | None = None, env: dict | None = None, config: dict | None = None):
        """`config`, when given, is the whole configuration (the data directory is added); otherwise it is made from
        the spool and the keyword settings, with `extra`'s sections merged in."""
        self.label = label
        self.env = env or {}
        self.spool = spool
        self.data = base / f"data-{label}"
        self.data.mkdir(parents=True, exist_ok=True)
        self.config_path = base / f"config-{label}.json"
        if config is None:
            config = {
                "spool": {"directory": str(spool), "settleSeconds": settle, "rescanIntervalSeconds": rescan},
                "agent": {"maxConcurrentRestores": max_concurrent, "leaseSeconds": lease},
            }
            for section, values in (extra or {}).items():
                config.setdefault(section, {}).update(values)
        config = {"dataDirectory": str(self.data), **config}
        self.config_path.write_text(json.dumps(config, indent=2))
        self.log_path = base / f"{label}.stderr.log"
        self.binary = binary or agent_binary()
        self.process: subprocess.Popen | None = None
        self._log = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    @property
    def command(self) -> list[str]:
        return [str(self.binary), "run", "--config", str(self.config_path)]

    def start(self, wait_ready: bool = True, timeout: float = 30,
              launch: Callable[[list[str]], list[str]] | None = None,
              output: pathlib.Path | None = None) -> "Agent":
        """Starts the agent and (by default) waits until it logs 'agent started'. `launch` turns the agent's argv
        into the argv to run (e.g. a namespace host's init, which must send the agent's stderr to `log_path`);
        `output` then takes what that process writes itself (default: the agent's log)."""
        self._log = open(output or self.log_path, "ab")
        argv = launch(self.command) if launch else self.command
        self.process = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log, start_new_session=True,
            env={**os.environ, **self.env})
        if wait_ready:
            wait_until(lambda: self.log_has("agent started") or self.process.poll() is not None, timeout,
                       what=f"{self.label} to log 'agent started'")
            output_text = output.read_text(errors="replace") if output else ""
            assert self.process.poll() is None, \
                f"{self.label} exited with {self.process.returncode}:\n{output_text}{self.log_text()}"
        return self

    def wait_exit(self, timeout: float = 30) -> int:
        """Waits for the process to end by itself (e.g. a crash point's SIGKILL) and reaps it."""
        assert self.process is not None
        code = self.process.wait(timeout=timeout)
        if self._log:
            self._log.close()
            self._log = None
        return code

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_lines(self) -> list[dict]:
        lines = []
        for raw in self.log_text().splitlines():
            try:
                lines.append(json.loads(raw))
            except json.JSONDecodeError:
                lines.append({"message": raw, "unparsed": True})
        return lines

    def log_has(self, message: str) -> bool:
        return any(line.get("message") == message for line in self.log_lines())

    def send(self, sig: int) -> None:
        assert self.process is not None
        os.kill(self.process.pid, sig)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> int:
        """Sends `sig` by PID and waits; returns the exit status (kills and fails after `timeout`)."""
        assert self.process is not None
        if self.process.poll() is None:
            os.kill(self.process.pid, sig)
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait()
            raise AssertionError(f"{self.label} (pid {self.process.pid}) did not stop within {timeout} s after {sig!r}")
        finally:
            if self._log:
                self._log.close()
                self._log = None
        return code

    def kill_if_running(self) -> None:
        """Cleanup after a failed test: SIGKILL by PID (only our own process)."""
        if self.process is not None and self.process.poll() is None:
            try:
                os.kill(self.process.pid, signal.SIGCONT)
                os.kill(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.process.wait()
        if self._log:
            self._log.close()
            self._log = None

    def running_transitions(self) -> dict[str, int]:
        rows = journal_rows(self.data, "SELECT r.name, COUNT(*) FROM transitions t JOIN requests r ON r.job_id = t.job_id "
                                       "WHERE t.state = 'running' GROUP BY r.name")
        return {name: count for name, count in rows}

    def cpu_ticks(self) -> int:
        """utime + stime of the process in clock ticks (/proc/<pid>/stat fields 14 and 15)."""
        text = pathlib.Path(f"/proc/{self.pid}/stat").read_text()
        fields = text[text.rindex(")") + 2:].split()
        return int(fields[11]) + int(fields[12])

    def memory_kib(self) -> dict[str, int]:
        out = {}
        for line in pathlib.Path(f"/proc/{self.pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0])
        return out


def run_cli(*args: str, env: dict | None = None, timeout: float = 30, input: bytes | None = None) -> subprocess.CompletedProcess:
    """Runs `dropbox-agent ARGS…` and returns the completed process (stdout/stderr as text)."""
    return subprocess.run([str(agent_binary()), *args], capture_output=True, timeout=timeout, input=input,
                          env={**os.environ, **(env or {})})


class StatusWatcher(threading.Thread):
    """Re-reads every `*.status.json` in a spool in a tight loop; records torn reads and disappearances."""

    def __init__(self, spool: pathlib.Path):
        super().__init__(daemon=True)
        self.spool = spool
        self.stop_event = threading.Event()
        self.seen: set[str] = set()
        self.problems: list[str] = []
        self.reads = 0
        self.last_rank: dict[str, int] = {}
        self.regressions: list[str] = []

    def run(self) -> None:
        while not self.stop_event.is_set():
            present = {e.name for e in os.scandir(self.spool) if e.name.endswith(".status.json") and not e.name.startswith(".")}
            for name in self.seen | present:
                try:
                    data = (self.spool / name).read_bytes()
                except FileNotFoundError:
                    if name in self.seen:
                        self.problems.append(f"{name}: missing after it had appeared")
                    continue
                self.reads += 1
                try:
                    doc = json.loads(data)
                    state = doc.get("state")
                    if state not in STATES:
                        self.problems.append(f"{name}: unexpected state {state!r}")
                    else:
                        # A request's state only moves forward: waiting → queued → running → terminal.
                        rank = STATE_RANK[state]
                        if rank < self.last_rank.get(name, 0):
                            self.regressions.append(f"{name}: {RANK_NAME[self.last_rank[name]]} → {state} "
                                                    f"(agent {doc.get('agent')})")
                        self.last_rank[name] = max(rank, self.last_rank.get(name, 0))
                except (json.JSONDecodeError, UnicodeDecodeError) as e:
                    self.problems.append(f"{name}: invalid JSON ({e}): {data[:80]!r}")
                self.seen.add(name)

    def stop(self) -> None:
        self.stop_event.set()
        self.join(timeout=10)


# ---------------------------------------------------------------------------------------------------------------
# End to end: real CASA, real nginx / fault store / ALMA archive stand-in / aiosmtpd


def require_prerequisites():
    """Fails (never skips) with what to do when something the end-to-end tests need is missing."""
    missing = []
    if not AGENT.exists():
        missing.append(f"the agent binary {AGENT} (swift build)")
    if not (CASA_VENV / "bin/python3").exists():
        missing.append(f"the modular CASA venv {CASA_VENV} (python3 casa/casaenv.py install --venv {CASA_VENV})")
    if not (FIXTURE / "catalog.json").exists():
        missing.append(f"the synthetic MOUS fixture {FIXTURE} ({CASA_VENV}/bin/python3 casa/make_fixture.py {FIXTURE})")
    for tool in ("nginx", "/usr/bin/python3", "openssl"):
        if subprocess.run(["sh", "-c", f"command -v {tool}"], capture_output=True).returncode != 0:
            missing.append(f"{tool} (make deps)")
    if subprocess.run(["/usr/bin/python3", "-c", "import aiosmtpd"], capture_output=True).returncode != 0:
        missing.append("python3-aiosmtpd (make deps)")
    assert not missing, "missing for the end-to-end tests: " + "; ".join(missing) + " — `make test` prepares all of these"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Service:
    """A helper server started by a script that writes RUN_DIR/pid and RUN_DIR/port; stopped by PID."""

    def __init__(self, argv, run_dir, pid_file="pid"):
        self.run_dir = pathlib.Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.log = open(self.run_dir / "service.log", "w")
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT)
        self.pid_file = self.run_dir / pid_file
        self.port = int(wait_until(lambda: (self.run_dir / "port").exists() and (self.run_dir / "port").read_text().strip(), 15, f"{argv[0]} to start"))
        wait_until(lambda: _connectable(self.port), 10, f"port {self.port}")

    def stop(self):
        if self.pid_file.exists():
            try:
                os.kill(int(self.pid_file.read_text().strip()), signal.SIGTERM)
            except (ProcessLookupError, ValueError):
                pass
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def _connectable(port):
    try:
        socket.create_connection(("127.0.0.1", port), 0.2).close()
        return True
    except OSError:
        return False


def start_nginx(store, run_dir, autoindex="off", users=None):
    """nginx serving STORE as an NGAS store (/RETRIEVE, /STATUS) and as plain files under /files/ (autoindex
    off|html|json); with `users` (an nginx auth_basic_user_file) every request needs that HTTP Basic login."""
    run_dir = pathlib.Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    argv = ["sh", str(SERVICES / "nginx-store.sh"), "start", str(store), "0", str(run_dir), autoindex]
    if users is not None:
        argv.append(str(users))
    subprocess.run(argv, check=True, capture_output=True)
    port = int((run_dir / "port").read_text())

    class Nginx:
        url = f"http://127.0.0.1:{port}"
        access_log = run_dir / "access.log"

        def requested_paths(self):
            if not self.access_log.exists():
                return []
            return [line.split('"')[1].split()[1] for line in self.access_log.read_text().splitlines() if '"' in line]

        def retrieves(self):
            if not self.access_log.exists():
                return 0
            return sum(1 for line in self.access_log.read_text().splitlines() if "/RETRIEVE" in line)

        def stop(self):
            subprocess.run(["sh", str(SERVICES / "nginx-store.sh"), "stop", str(run_dir)], capture_output=True)

    return Nginx()


def start_fault_store(store, run_dir):
    s = Service([os.environ.get("PYTHON", "python3"), str(SERVICES / "fault_store.py"), "--store", str(store), "--run-dir", str(run_dir)], run_dir)
    s.url = f"http://127.0.0.1:{s.port}"

    def counters():
        import urllib.request
        with urllib.request.urlopen(s.url + "/_counters", timeout=5) as r:
            return json.loads(r.read())

    s.counters = counters
    return s


def start_alma_archive(config, run_dir):
    """The ALMA archive stand-in (TAP, DataLink, dataPortal) of scripts/services/alma_archive.py."""
    run_dir = pathlib.Path(run_dir)
    log = run_dir / "requests.jsonl"
    s = Service([os.environ.get("PYTHON", "python3"), str(SERVICES / "alma_archive.py"), "--config", str(config),
                 "--run-dir", str(run_dir), "--log", str(log), "--forbid-products"], run_dir)
    s.url = f"http://127.0.0.1:{s.port}"

    def get(path):
        import urllib.request
        with urllib.request.urlopen(s.url + path, timeout=5) as r:
            return json.loads(r.read())

    s.failures = lambda: get("/_failures")
    s.requests = lambda: [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return s


def start_smtp(run_dir, user="agent", password="s3cret"):
    s = Service(["/usr/bin/python3", str(SERVICES / "smtp_server.py"), "--run-dir", str(run_dir), "--user", user, "--password", password], run_dir)
    s.user, s.password, s.ca_file = user, password, pathlib.Path(run_dir) / "cert.pem"

    def messages():
        out = []
        for meta in sorted((pathlib.Path(run_dir) / "mail").glob("*.json")):
            envelope = json.loads(meta.read_text())
            envelope["text"] = meta.with_suffix(".eml").read_text(errors="replace")
            out.append(envelope)
        return out

    s.messages = messages
    return s


class RestoreAgent:
    """The real `dropbox-agent run` configured for real restores (modular CASA, the given archive store, SMTP
    when given), in TMP: `spool/`, `data/`, `agent.json`, one log file per start."""

    def __init__(self, tmp, store_url, smtp=None, extra=None, cache=None, catalogue=True):
        self.tmp = pathlib.Path(tmp)
        self.spool = self.tmp / "spool"
        self.spool.mkdir(parents=True, exist_ok=True)
        config = {
            "dataDirectory": str(self.tmp / "data"),
            "spool": {"directory": str(self.spool), "settleSeconds": 0.2, "rescanIntervalSeconds": 5},
            "agent": {"maxConcurrentRestores": 1, "leaseSeconds": 10, "shutdownGraceSeconds": 5},
            "archive": {"url": store_url, "cacheDirectory": str(cache or self.tmp / "cache"), "maxAttempts": 6},
            "casa": {"modularVenv": str(CASA_VENV), "timeoutSeconds": 900, "killGraceSeconds": 5},
            "delivery": {"baseURL": "https://downloads.example.org/restores"},
            "notifications": {"from": "dropbox-agent@example.org"},
            "logging": {"level": "info"},
        }
        if smtp is not None:
            config["notifications"]["smtp"] = {
                "url": f"smtp://127.0.0.1:{smtp.port}", "security": "startTLS", "username": smtp.user,
                "password": smtp.password, "caFile": str(smtp.ca_file), "timeoutSeconds": 20,
            }
        for section, values in (extra or {}).items():
            if isinstance(values, dict):
                config.setdefault(section, {}).update(values)
            else:
                config[section] = values
        self.config = self.tmp / "agent.json"
        self.config.write_text(json.dumps(config, indent=2))
        self.proc = None
        self.logs = []
        if catalogue:
            self.cli("catalog", "import", str(FIXTURE / "catalog.json"))

    def cli(self, *args, check=True):
        r = subprocess.run([str(AGENT), *args, "--config", str(self.config)], capture_output=True, text=True, timeout=120)
        if check:
            assert r.returncode == 0, f"dropbox-agent {' '.join(args)}: {r.stdout}{r.stderr}"
        return r

    def start(self):
        log = self.tmp / f"agent-{len(self.logs)}.log"
        self.logs.append(log)
        self.proc = subprocess.Popen([str(AGENT), "run", "--config", str(self.config)], stdout=subprocess.DEVNULL, stderr=open(log, "w"))
        wait_until(lambda: '"agent started"' in log.read_text(), 30, "the agent to start")
        return self

    def stop(self, sig=signal.SIGTERM):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            return self.proc.wait(60)
        return self.proc.returncode if self.proc else None

    def drop(self, name, document):
        """Writes the request as an outside system would: a temporary name, then rename."""
        tmp = self.spool / f".{name}.json.part"
        tmp.write_text(json.dumps(document))
        os.rename(tmp, self.spool / f"{name}.json")

    def status(self, name):
        try:
            return json.loads((self.spool / f"{name}.status.json").read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    def wait(self, name, predicate, timeout=600, what="a status"):
        def check():
            s = self.status(name)
            if s and s["state"] in TERMINAL and not predicate(s):
                raise AssertionError(f"{name} ended {s['state']} while waiting for {what}: {json.dumps(s.get('error'))}\n{self.log_tail()}")
            return s if s and predicate(s) else None
        return wait_until(check, timeout, f"{name}: {what}", interval=0.2)

    def wait_terminal(self, name, timeout=600):
        return self.wait(name, lambda s: s["state"] in TERMINAL, timeout, "a terminal state")

    def log_tail(self, n=30):
        return "\n".join(self.logs[-1].read_text().splitlines()[-n:]) if self.logs else ""


def casa_processes():
    """Pids of CASA restore processes (restore_mous.py or casatools) still running."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmd = pathlib.Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z" and ("restore_mous.py" in cmd or "casa_steps" in cmd):
            found.append((int(pid), cmd))
    return found


def casa_env(home):
    """The offline CASA environment (what casa/casaenv.py gives the agent's runner)."""
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}
    pathlib.Path(home).mkdir(parents=True, exist_ok=True)
    env.update(HOME=str(home), CASASITECONFIG=str(CASA_VENV / "casasiteconfig.py"), MPLBACKEND="Agg", LANG="C.UTF-8")
    return env


def compare_ms(ms, reference):
    home = pathlib.Path(ms).parent.parent / ".compare-home"
    r = subprocess.run([str(CASA_VENV / "bin/python3"), str(ROOT / "casa/compare_ms.py"), str(ms), str(reference)],
                       capture_output=True, text=True, timeout=300, env=casa_env(home), cwd=str(pathlib.Path(home).parent))
    return r.returncode, r.stdout + r.stderr


@pytest.fixture
def agents():
    """Agents a test starts (append them); any still running at the end are killed."""
    running = []
    yield running
    for a in running:
        a.stop(signal.SIGKILL)
    # CASA runs detached from the agent (it survives an agent restart, by design): a test that ended with its agent
    # killed during step 5 would leave it running, loading the machine for the tests after it (the sshfs multihost
    # test once failed after this module that way). Killed by PID, only those working under the test's agents.
    kill_casa_under([a.tmp for a in running if hasattr(a, "tmp")])


def kill_casa_under(roots) -> list[int]:
    """SIGKILL (by PID) of the CASA processes whose working directory lies under one of `roots`; returns them."""
    roots = [str(pathlib.Path(r).resolve()) + "/" for r in roots]
    killed = []
    for pid, _ in casa_processes():
        try:
            cwd = os.readlink(f"/proc/{pid}/cwd") + "/"
        except OSError:
            continue
        if any(cwd.startswith(r) for r in roots):
            try:
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            except ProcessLookupError:
                pass
    return killed
