"""Helpers for tests (and the pickup bench) that drive real `dropbox-agent` processes.

Everything here synchronises by polling with a deadline; nothing sleeps for a fixed time to "let things
happen". Agents are started with subprocess.Popen in their own process group and stopped by PID.
"""
from __future__ import annotations

import json
import os
import pathlib
import signal
import sqlite3
import subprocess
import threading
import time
from typing import Callable, Iterable

ROOT = pathlib.Path(__file__).resolve().parent.parent
TERMINAL = {"succeeded", "failed", "rejected", "cancelled"}
STATES = {"waiting", "queued", "running"} | TERMINAL
STATE_RANK = {"waiting": 1, "queued": 2, "running": 3, **{s: 4 for s in TERMINAL}}
RANK_NAME = {1: "waiting", 2: "queued", 3: "running", 4: "terminal"}


def agent_binary() -> pathlib.Path:
    """The agent under test: $DROPBOX_AGENT_BIN, else the debug build in the repository."""
    path = pathlib.Path(os.environ.get("DROPBOX_AGENT_BIN") or ROOT / ".build/debug/dropbox-agent")
    if not path.is_file() or not os.access(path, os.X_OK):
        raise AssertionError(f"agent binary {path} not found: run `swift build` in {ROOT} (or set DROPBOX_AGENT_BIN)")
    return path


def wait_until(predicate: Callable[[], object], timeout: float, interval: float = 0.02, what: str = "condition"):
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
                 binary: pathlib.Path | None = None, env: dict | None = None):
        self.label = label
        self.env = env or {}
        self.spool = spool
        self.data = base / f"data-{label}"
        self.data.mkdir(parents=True, exist_ok=True)
        self.config_path = base / f"config-{label}.json"
        config = {
            "dataDirectory": str(self.data),
            "spool": {"directory": str(spool), "settleSeconds": settle, "rescanIntervalSeconds": rescan},
            "agent": {"maxConcurrentRestores": max_concurrent, "leaseSeconds": lease},
        }
        for section, values in (extra or {}).items():
            config.setdefault(section, {}).update(values)
        self.config_path.write_text(json.dumps(config, indent=2))
        self.log_path = base / f"{label}.stderr.log"
        self.binary = binary or agent_binary()
        self.process: subprocess.Popen | None = None
        self._log = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self, wait_ready: bool = True, timeout: float = 30) -> "Agent":
        self._log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [str(self.binary), "run", "--config", str(self.config_path)],
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log, start_new_session=True,
            env={**os.environ, **self.env})
        if wait_ready:
            wait_until(lambda: self.log_has("agent started") or self.process.poll() is not None, timeout,
                       what=f"{self.label} to log 'agent started'")
            assert self.process.poll() is None, f"{self.label} exited with {self.process.returncode}:\n{self.log_text()}"
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
