"""Helpers for the end-to-end tests: the real agent binary, real CASA, real nginx / fault store / aiosmtpd."""
import json
import os
import pathlib
import signal
import socket
import subprocess
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
AGENT = pathlib.Path(os.environ.get("DROPBOX_AGENT_BIN", ROOT / ".build/debug/dropbox-agent"))
CASA_VENV = pathlib.Path(os.environ.get("DROPBOX_CASA_VENV", ROOT / ".cache/casa-venv"))
FIXTURE = pathlib.Path(os.environ.get("DROPBOX_FIXTURE_DIR", ROOT / ".cache/fixture"))
SERVICES = ROOT / "scripts/services"
MOUS_A = "uid://A001/X3f01/X1a5"
MOUS_B = "uid://A001/X3f01/X1b0"
TERMINAL = {"succeeded", "failed", "rejected", "cancelled"}


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


def wait_for(predicate, timeout, what, interval=0.1):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


class Service:
    """A helper server started by a script that writes RUN_DIR/pid and RUN_DIR/port; stopped by PID."""

    def __init__(self, argv, run_dir, pid_file="pid"):
        self.run_dir = pathlib.Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.log = open(self.run_dir / "service.log", "w")
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT)
        self.pid_file = self.run_dir / pid_file
        self.port = int(wait_for(lambda: (self.run_dir / "port").exists() and (self.run_dir / "port").read_text().strip(), 15, f"{argv[0]} to start"))
        wait_for(lambda: _connectable(self.port), 10, f"port {self.port}")

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


def start_nginx(store, run_dir, autoindex="off"):
    """nginx serving STORE as an NGAS store (/RETRIEVE) and as plain files under /files/ (autoindex off|html|json)."""
    run_dir = pathlib.Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    subprocess.run(["sh", str(SERVICES / "nginx-store.sh"), "start", str(store), "0", str(run_dir), autoindex], check=True, capture_output=True)
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


class Agent:
    """The real `dropbox-agent run` with a configuration written for the test."""

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
        wait_for(lambda: '"agent started"' in log.read_text(), 30, "the agent to start")
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
        return wait_for(check, timeout, f"{name}: {what}", interval=0.2)

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
