"""Issue 10: a request is never stuck, lost or run twice; fenced leases.

Each test reproduces a failure of the chaos campaign with the real binary: `DROPBOX_AGENT_CRASH_AT=point[:n]`
makes the agent `kill -9` itself at a precise window between two writes (the n-th time it gets there), so the
crash is real and the window exact. Requests for a MOUS absent from the (empty) catalogue end `failed` at step 1
quickly; a request whose archive never answers (a TCP server that accepts and stays silent) stays `running`
as long as a test needs a live job. Everything is bounded by deadlines; agents are stopped by PID.
"""
from __future__ import annotations

import json
import os
import pathlib
import signal
import socket
import threading
import time

import pytest

from agentlib import TERMINAL, Agent, StatusWatcher, drop, journal_rows, read_status, wait_until

MOUS = "uid://A001/X3f01/X1a5"


@pytest.fixture
def spool(tmp_path: pathlib.Path) -> pathlib.Path:
    s = tmp_path / "spool"
    s.mkdir()
    return s


@pytest.fixture
def agents():
    started: list[Agent] = []
    yield started
    for a in started:
        a.kill_if_running()


class SilentServer:
    """Accepts TCP connections and never answers: an archive that hangs (keeps a job `running`)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.conns: list[socket.socket] = []
        self.stopped = False
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        while not self.stopped:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)

    def close(self):
        self.stopped = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept(); later connections are refused
        except OSError:
            pass
        self.sock.close()
        for c in self.conns:
            c.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture
def silent_archive():
    s = SilentServer()
    yield s
    s.close()


def hanging_config(server: SilentServer) -> dict:
    return {"sources": {"almaArchive": {"url": server.url}}, "agent": {"shutdownGraceSeconds": 1}}


def archive_request(tag: str) -> bytes:
    return json.dumps({"mous": MOUS, "requestId": tag, "source": {"archive": "alma"}}).encode()


def job_dirs(spool: pathlib.Path, where: str, name: str) -> list[pathlib.Path]:
    d = spool / ".dropbox-agent" / where
    return sorted(p for p in d.iterdir() if p.name.split(".")[0] == name) if d.is_dir() else []


def wait_state(spool, name, predicate, timeout=30, what=None):
    def check():
        doc = read_status(spool, name)
        return doc if doc and predicate(doc) else None
    return wait_until(check, timeout, interval=0.05, what=what or f"status of {name}")


# ---------------------------------------------------------------------------------------------------------------
# 1. Takeover: an attempt directory without a live lease is recoverable


def current_lease(job: pathlib.Path) -> dict:
    """The job's current lease: the highest `attempts/<n>.json`."""
    n = max(int(p.name[:-5]) for p in (job / "attempts").glob("*.json") if not p.name.startswith("."))
    return json.loads((job / "attempts" / f"{n}.json").read_text())


def test_takeover_by_an_agent_killed_right_after_winning_is_recovered(tmp_path, spool, agents):
    # An agent killed right after claiming: the job stays in jobs/ with attempt 1 and a dead owner.
    a = Agent(tmp_path, spool, "a", env={"DROPBOX_AGENT_CRASH_AT": "before-duplicate-check"})
    agents.append(a)
    a.start()
    drop(spool, "req", json.dumps({"mous": MOUS, "requestId": "t1"}).encode())
    assert a.wait_exit() == -signal.SIGKILL
    [job] = job_dirs(spool, "jobs", "req")
    assert current_lease(job)["attempt"] == 1

    # The next agent wins attempt 2 (its lease is linked complete, there is no "won but not written" window) and
    # is killed right after.
    b = Agent(tmp_path, spool, "b", env={"DROPBOX_AGENT_CRASH_AT": "takeover-after-lease"})
    agents.append(b)
    b.start(wait_ready=False)
    assert b.wait_exit() == -signal.SIGKILL
    lease = current_lease(job)
    assert lease["attempt"] == 2 and lease["owner"]["pid"] == b.pid, lease

    # A third agent sees attempt 2's owner dead (same host): it takes attempt 3 and ends the request.
    c = Agent(tmp_path, spool, "c")
    agents.append(c)
    c.start()
    doc = wait_state(spool, "req", lambda d: d["state"] in TERMINAL, timeout=30, what="req to end after the takeover")
    assert doc["state"] == "failed" and doc["attempt"] == 3, doc
    wait_until(lambda: job_dirs(spool, "jobs", "req") == [], 10, what="the job to move to finished/")
    assert c.stop() == 0


def test_an_agent_killed_after_writing_the_final_status_is_concluded_without_the_status_going_back(tmp_path, spool, agents):
    """The attempt that won the conclusion wrote the terminal status and died before moving the job to finished/
    (on sshfs, a host killed whole in that window made its survivor write `running` over the terminal status). The
    next agent completes the conclusion only: the status never goes back, no step runs again, one terminal row."""
    watcher = StatusWatcher(spool)
    watcher.start()
    try:
        a = Agent(tmp_path, spool, "a", env={"DROPBOX_AGENT_CRASH_AT": "conclude-after-status"})
        agents.append(a)
        a.start()
        drop(spool, "req", json.dumps({"mous": MOUS, "requestId": "t-final"}).encode())
        assert a.wait_exit() == -signal.SIGKILL
        concluded = read_status(spool, "req")
        assert concluded["state"] == "failed" and concluded["agent"]["pid"] == a.pid, concluded
        [job] = job_dirs(spool, "jobs", "req")
        assert current_lease(job).get("concludes") == 1, "a had won the conclusion"

        b = Agent(tmp_path, spool, "b")
        agents.append(b)
        b.start()
        wait_until(lambda: job_dirs(spool, "jobs", "req") == [] and job_dirs(spool, "finished", "req"), 30,
                   what="the job moved to finished/ by b")
        reads = watcher.reads
        wait_until(lambda: watcher.reads > reads + 5, 10, what="the status read again after the move")
    finally:
        watcher.stop()
    assert watcher.regressions == [], watcher.regressions
    after = read_status(spool, "req")
    assert after["state"] == "failed" and after["agent"]["pid"] == a.pid and after["attempt"] == 1, after
    assert "/finished/" in after["requestFile"], after
    assert '"message":"the previous attempt had concluded the request; completing its conclusion"' in b.log_path.read_text()
    sql = "SELECT t.state FROM transitions t JOIN requests r ON r.job_id = t.job_id WHERE r.name = 'req'"
    assert [s for (s,) in journal_rows(b.data, sql)] == ["failed"], "b records the end once and runs no step"
    assert [s for (s,) in journal_rows(a.data, sql) if s in TERMINAL] == [], "a died before its journal row"
    assert b.stop() == 0


# ---------------------------------------------------------------------------------------------------------------
# 3. Identical-request linking is crash-safe


def test_resume_after_kill_before_duplicate_check_links_instead_of_running(tmp_path, spool, agents, silent_archive):
    a = Agent(tmp_path, spool, "a", extra=hanging_config(silent_archive),
              env={"DROPBOX_AGENT_CRASH_AT": "before-duplicate-check:2"})
    agents.append(a)
    a.start()
    drop(spool, "one", archive_request("same"))
    wait_state(spool, "one", lambda d: d["state"] == "running", what="one running (archive hangs)")
    drop(spool, "two", archive_request("same"))  # identical content; the agent is killed before the check
    assert a.wait_exit() == -signal.SIGKILL

    b = Agent(tmp_path, spool, "b", extra=hanging_config(silent_archive))
    agents.append(b)
    b.start()
    doc = wait_state(spool, "two", lambda d: d.get("linkedTo"), what="two linked to one on resume")
    assert doc["linkedTo"]["request"] == "one", doc
    # It never ran a step of its own.
    rows = journal_rows(b.data, "SELECT COUNT(*) FROM steps s JOIN requests r ON r.job_id = s.job_id WHERE r.name = 'two'")
    assert rows == [(0,)]
    wait_until(lambda: job_dirs(spool, "jobs", "two") == [], 10, what="two's job to be finished")
    b.kill_if_running()


def test_kill_between_link_status_and_finish_never_leaves_queued(tmp_path, spool, agents, silent_archive):
    a = Agent(tmp_path, spool, "a", extra=hanging_config(silent_archive),
              env={"DROPBOX_AGENT_CRASH_AT": "link-before-finish"})
    agents.append(a)
    a.start()
    drop(spool, "one", archive_request("same"))
    wait_state(spool, "one", lambda d: d["state"] == "running", what="one running (archive hangs)")
    drop(spool, "two", archive_request("same"))
    assert a.wait_exit() == -signal.SIGKILL
    doc = read_status(spool, "two")
    assert doc["state"] != "queued" and doc.get("linkedTo", {}).get("request") == "one", doc
    assert job_dirs(spool, "jobs", "two"), "the job stays in jobs/ so that it is resumed"

    b = Agent(tmp_path, spool, "b", extra=hanging_config(silent_archive))
    agents.append(b)
    b.start()
    wait_until(lambda: job_dirs(spool, "jobs", "two") == [] and job_dirs(spool, "finished", "two"), 15,
               what="two's job to be linked again and finished")
    doc = read_status(spool, "two")
    assert doc["linkedTo"]["request"] == "one" and doc["state"] != "queued", doc
    b.kill_if_running()


# ---------------------------------------------------------------------------------------------------------------
# Leases with fencing


class AgentPidReader(threading.Thread):
    """Reads one status file in a tight loop and records (time, agent pid, state) of every read."""

    def __init__(self, spool: pathlib.Path, name: str):
        super().__init__(daemon=True)
        self.path = spool / f"{name}.status.json"
        self.reads: list[tuple[float, int | None, str]] = []
        self.halt = threading.Event()

    def run(self):
        while not self.halt.is_set():
            try:
                doc = json.loads(self.path.read_bytes())
            except (FileNotFoundError, json.JSONDecodeError):
                continue
            self.reads.append((time.monotonic(), (doc.get("agent") or {}).get("pid"), doc.get("state")))
            time.sleep(0.002)

    def stop(self):
        self.halt.set()
        self.join(5)


def test_a_stalled_owner_that_lost_its_lease_writes_nothing(tmp_path, spool, agents, silent_archive):
    extra = hanging_config(silent_archive)
    extra["archive"] = {"maxAttempts": 1, "retryHorizonSeconds": 0}  # the archive failure ends the request
    a = Agent(tmp_path, spool, "a", lease=3, extra=extra)
    b = Agent(tmp_path, spool, "b", lease=3, extra=extra)
    agents += [a, b]
    a.start()
    drop(spool, "x", archive_request("fence"))
    wait_state(spool, "x", lambda d: d["state"] == "running" and d["agent"]["pid"] == a.pid, what="x running on a")
    a.send(signal.SIGSTOP)  # stalled: its lease expires and b takes the request over
    b.start()
    wait_state(spool, "x", lambda d: d["state"] == "running" and d["agent"]["pid"] == b.pid, timeout=20,
               what="b to take x over")
    reader = AgentPidReader(spool, "x")
    reader.start()
    try:
        a.send(signal.SIGCONT)
        time.sleep(0.3)  # a is running again, with its step still waiting on the archive
        for c in list(silent_archive.conns):
            c.close()  # both archive connections fail now: a's step ends too and a would conclude
        # Whichever notices first: the renewal loop, a fenced write, or the step's end (its fence check).
        wait_until(lambda: a.log_has("lease taken over by another agent; stopping")
                   or a.log_has("lease lost to another agent; stopped without writing anything more")
                   or a.log_has("lease lost to another agent; stopped without touching the status"), 10,
                   what="a to notice it lost the lease")
        doc = wait_state(spool, "x", lambda d: d["state"] in TERMINAL, timeout=20, what="x to end (b)")
        time.sleep(1)
    finally:
        reader.stop()
    written_by_a = [r for r in reader.reads if r[1] == a.pid]
    assert written_by_a == [], f"the stalled agent wrote the status after losing the lease: {written_by_a[:5]}"
    assert doc["agent"]["pid"] == b.pid and doc["attempt"] == 2, doc
    assert any("taken over from" in (h.get("message") or "") for h in doc["history"]), doc["history"]
    assert a.process.poll() is None, "the agent that lost the lease keeps running"
    assert a.stop() == 0 and b.stop() == 0


def test_a_second_agent_on_the_same_data_directory_refuses_to_start(tmp_path, spool, agents):
    a = Agent(tmp_path, spool, "a")
    agents.append(a)
    a.start()
    twin = Agent(tmp_path, spool, "a")  # same configuration, same dataDirectory
    agents.append(twin)
    twin.start(wait_ready=False)
    assert twin.wait_exit(timeout=15) == 1
    text = twin.log_text()
    assert "in use by another agent" in text and f"pid {a.pid}" in text, text[-2000:]
    assert a.process.poll() is None
    assert a.stop() == 0
    # Once the holder has stopped, the directory is free again.
    again = Agent(tmp_path, spool, "a")
    again.log_path.unlink()  # wait for this run's "agent started", not the first one's
    agents.append(again)
    again.start()
    assert again.stop() == 0


def test_sighup_is_ignored_and_never_kills_the_agent(tmp_path, spool, agents):
    a = Agent(tmp_path, spool, "a")
    agents.append(a)
    a.start()
    a.send(signal.SIGHUP)
    wait_until(lambda: a.log_has("SIGHUP ignored: the configuration is read at start; restart the agent to change it"), 10,
               what="the SIGHUP log line")
    drop(spool, "after-hup", json.dumps({"mous": MOUS, "requestId": "hup"}).encode())
    wait_state(spool, "after-hup", lambda d: d["state"] in TERMINAL, what="a request after SIGHUP to end")
    assert a.process.poll() is None
    assert a.stop() == 0


# ---------------------------------------------------------------------------------------------------------------
# 4. Leftovers are swept on start, safely


def backdate(path: pathlib.Path, seconds: float) -> None:
    t = time.time() - seconds
    os.utime(path, (t, t), follow_symlinks=False)


def test_leftovers_are_swept_on_start_and_live_ones_kept(tmp_path, spool, agents):
    # A real kill -9 between a claim's mkdir and its lease: a job folder without a lease.
    a = Agent(tmp_path, spool, "a", env={"DROPBOX_AGENT_CRASH_AT": "claim-before-lease"})
    agents.append(a)
    a.start()
    drop(spool, "claimed", json.dumps({"mous": MOUS, "requestId": "c"}).encode())
    assert a.wait_exit() == -signal.SIGKILL
    [interrupted] = job_dirs(spool, "jobs", "claimed")
    assert not list((interrupted / "attempts").glob("*.json")) and not (interrupted / "request.json").exists()
    backdate(interrupted, 120)

    work = spool / ".dropbox-agent"
    # A job folder holding a request but no lease (its lease was lost): must be taken over, not skipped.
    orphan = work / "jobs" / "nolease.20261205T000000.vm.1.1"
    (orphan / "attempts" / "1").mkdir(parents=True)
    (orphan / "request.json").write_text(json.dumps({"mous": MOUS, "requestId": "nolease"}))
    backdate(orphan, 120)

    data = a.data
    downloads, restores = data / "downloads", data / "restores"
    downloads.mkdir(exist_ok=True)
    restores.mkdir(exist_ok=True)
    # What a kill during delivery of a since-concluded job leaves, and what a kill just past `succeeded` leaves.
    done = "done.20261205T000000.vm.2.1"
    failed = "bad.20261205T000000.vm.3.1"
    for job, state in ((done, "succeeded"), (failed, "failed")):
        (work / "finished" / job).mkdir(parents=True)
        (work / "finished" / job / "final.json").write_text(json.dumps(
            {"name": job.split(".")[0], "state": state, "finishedAt": time.time(), "statusPath": str(spool / "x")}))
        (restores / job / "working").mkdir(parents=True)
    (downloads / f".{done}.publishing-1a2b3c4d" / "x.ms").mkdir(parents=True)
    # A staging of a job still in jobs/ is kept (it may be resumed).
    (downloads / f".{orphan.name}.publishing-5e6f7a8b").mkdir()
    # Orphan temporary files: of a dead process and old (removed); fresh, or of a live process (kept).
    dead = subprocess_dead_pid()
    old_tmp = spool / f".gone.status.json.{dead}.12345.tmp"
    fresh_tmp = spool / f".fresh.status.json.{dead}.12346.tmp"
    live_tmp = spool / f".live.status.json.{os.getpid()}.12347.tmp"
    # The dashboard's pages are written atomically too: a killed agent's temporaries there are swept as well.
    (data / "www" / "requests").mkdir(parents=True, exist_ok=True)
    page_tmp = data / "www" / "requests" / f".r.html.{dead}.12348.tmp"
    index_tmp = data / "www" / f".index.html.{dead}.12349.tmp"
    # A job folder moves to finished/ with a killed agent's lease temporaries in it, in the folder itself and in
    # attempts/ where leases are written (bench/chaos, N = 100); an active job's attempts/ is swept as well.
    finished_tmp = work / "finished" / done / f".lease.json.{dead}.12350.tmp"
    (work / "finished" / done / "attempts").mkdir()
    finished_attempt_tmp = work / "finished" / done / "attempts" / f".2.json.{dead}.12352.tmp"
    active_attempt_tmp = orphan / "attempts" / f".1.json.{dead}.12353.tmp"
    # And the mail queue's (bench/chaos, N = 100 on the fixed branch).
    (data / "mailqueue").mkdir(exist_ok=True)
    mail_tmp = data / "mailqueue" / f".{done}.json.{dead}.12351.tmp"
    for p in (old_tmp, fresh_tmp, live_tmp, page_tmp, index_tmp, finished_tmp, finished_attempt_tmp, active_attempt_tmp,
              mail_tmp):
        p.write_text("{")
    for p in (old_tmp, live_tmp, page_tmp, index_tmp, finished_tmp, finished_attempt_tmp, active_attempt_tmp, mail_tmp):
        backdate(p, 3600)

    b = Agent(tmp_path, spool, "a")  # same data directory: its downloads and restores
    agents.append(b)
    b.log_path.unlink()
    b.start()
    wait_until(lambda: b.log_has("leftovers swept"), 15, what="the start-up sweep")
    assert not interrupted.exists()
    assert not (downloads / f".{done}.publishing-1a2b3c4d").exists()
    assert (downloads / f".{orphan.name}.publishing-5e6f7a8b").exists()
    assert not (restores / done).exists(), "working area of a succeeded request"
    assert (restores / failed).exists(), "a failed request's working area is kept for inspection (onSuccess)"
    assert not old_tmp.exists() and fresh_tmp.exists() and live_tmp.exists()
    assert not page_tmp.exists() and not index_tmp.exists(), "the dashboard's orphan temporaries are swept"
    assert not finished_tmp.exists(), "a finished job folder's orphan temporary is swept"
    assert not finished_attempt_tmp.exists(), "and the one in its attempts/"
    assert not active_attempt_tmp.exists(), "an active job's attempts/ is swept too"
    assert not mail_tmp.exists(), "the mail queue's orphan temporary is swept"
    assert (work / "finished" / done / "final.json").exists(), "and nothing else of it"
    # The request whose claim was interrupted is still in the spool and runs; the lease-less job is taken over.
    for name in ("claimed", "nolease"):
        wait_state(spool, name, lambda d: d["state"] in TERMINAL, timeout=30, what=f"{name} to end")
    wait_until(lambda: job_dirs(spool, "jobs", "nolease") == [], 10, what="nolease to move to finished/")
    assert b.stop() == 0


def test_leftovers_appearing_later_are_swept_at_the_configured_interval(tmp_path, spool, agents):
    # agent.sweepIntervalSeconds: a running agent sweeps again that often (the default, 600 s, would not within
    # this test's deadline). A staging directory of a job that is nowhere (no jobs/ folder) goes at the next sweep.
    a = Agent(tmp_path, spool, "a", extra={"agent": {"sweepIntervalSeconds": 10}})
    agents.append(a)
    a.start()
    downloads = a.data / "downloads"
    downloads.mkdir(exist_ok=True)
    staging = downloads / ".gone.20261205T000000.vm.9.1.publishing-0a1b2c3d"
    (staging / "x.ms").mkdir(parents=True)
    wait_until(lambda: not staging.exists(), 120, what="the periodic sweep to remove the staging directory")
    # The sweep logs what it removed once it is done, just after the removal: poll for the line too.
    wait_until(lambda: a.log_has("leftovers swept"), 30, what="the sweep's log line")
    assert a.stop() == 0


def subprocess_dead_pid() -> int:
    """A pid that was just used by a process that has exited (and been reaped)."""
    import subprocess
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


# ---------------------------------------------------------------------------------------------------------------
# 6. Transient archive failures are retried later, up to a horizon


class FlakyArchive:
    """An HTTP archive answering every request with `self.status` (503 during an outage)."""

    def __init__(self):
        import http.server
        outer = self
        self.status = 503
        self.hits = 0

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                outer.hits += 1
                body = b"outage\n" if outer.status == 503 else b"no such thing\n"
                self.send_response(outer.status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def flaky_archive():
    s = FlakyArchive()
    yield s
    s.close()


def retry_config(archive: FlakyArchive, horizon: float) -> dict:
    return {"sources": {"almaArchive": {"url": archive.url}},
            "archive": {"maxAttempts": 1, "retryInitialSeconds": 0.5, "retryHorizonSeconds": horizon}}


def waiting_entries(doc: dict) -> list[dict]:
    return [h for h in doc.get("history", []) if (h.get("message") or "").startswith("waiting for archive, retry at ")]


def test_an_archive_outage_is_waited_out_and_the_request_goes_on(tmp_path, spool, agents, flaky_archive):
    a = Agent(tmp_path, spool, "a", lease=3, extra=retry_config(flaky_archive, horizon=120))
    agents.append(a)
    a.start()
    drop(spool, "outage", archive_request("outage"))
    doc = wait_state(spool, "outage", lambda d: d["state"] == "queued" and waiting_entries(d), timeout=20,
                     what="status 'waiting for archive, retry at …'")
    assert "503" in waiting_entries(doc)[0]["message"], doc
    wait_state(spool, "outage", lambda d: len(waiting_entries(d)) >= 2, timeout=20, what="a second retry")
    flaky_archive.status = 404  # the archive is back, and answers for good (here: not found)
    doc = wait_state(spool, "outage", lambda d: d["state"] in TERMINAL, timeout=30, what="the request to end")
    assert doc["state"] == "failed" and doc["error"]["code"] == "archiveUnavailable", doc
    assert "404" in doc["error"]["message"] and "transient failures since" not in doc["error"]["message"], doc
    assert doc["attempt"] == 1, "retries after an outage are not counted as crashed attempts"
    assert a.stop() == 0


def test_an_outage_longer_than_the_horizon_fails_and_says_so(tmp_path, spool, agents, flaky_archive):
    a = Agent(tmp_path, spool, "a", lease=3, extra=retry_config(flaky_archive, horizon=3))
    agents.append(a)
    a.start()
    drop(spool, "long", archive_request("long"))
    doc = wait_state(spool, "long", lambda d: d["state"] in TERMINAL, timeout=30, what="the request to give up")
    assert doc["state"] == "failed" and doc["error"]["code"] == "archiveUnavailable", doc
    assert "retried until archive.retryHorizonSeconds = 3 s" in doc["error"]["message"], doc
    assert len(waiting_entries(doc)) >= 1 and flaky_archive.hits >= 2
    assert a.stop() == 0


# ---------------------------------------------------------------------------------------------------------------
# 5. Mail is a durable queue, retried outside the job slot


class TinySMTP:
    """A minimal SMTP server on a fixed port (plain, no TLS); `silent=True` accepts and never answers."""

    def __init__(self, port: int = 0, silent: bool = False, reject_rcpt: bool = False):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.silent = silent
        self.reject_rcpt = reject_rcpt
        self.messages: list[dict] = []
        self.conns: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)
            if not self.silent:
                threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket):
        f = conn.makefile("rwb")
        def say(line: str):
            f.write(line.encode() + b"\r\n")
            f.flush()
        try:
            say("220 tiny ESMTP")
            rcpts, data = [], None
            while True:
                line = f.readline()
                if not line:
                    return
                cmd = line.decode(errors="replace").strip()
                verb = cmd.split(" ")[0].upper()
                if verb in ("EHLO", "HELO"):
                    say("250 tiny")
                elif verb == "MAIL":
                    rcpts = []
                    say("250 OK")
                elif verb == "RCPT":
                    if self.reject_rcpt:
                        say("550 5.1.1 no such user")
                        continue
                    rcpts.append(cmd.split(":", 1)[1].strip().strip("<>"))
                    say("250 OK")
                elif verb == "DATA":
                    say("354 go on")
                    body = []
                    while (l := f.readline()) not in (b".\r\n", b".\n", b""):
                        body.append(l)
                    self.messages.append({"to": rcpts, "data": b"".join(body).decode(errors="replace")})
                    say("250 queued")
                elif verb == "QUIT":
                    say("221 bye")
                    return
                else:
                    say("250 OK")
        except OSError:
            return

    def close(self):
        self.sock.close()
        for c in self.conns:
            try:
                c.close()
            except OSError:
                pass


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def mail_config(port: int, timeout: float) -> dict:
    return {"notifications": {"smtp": {"url": f"smtp://127.0.0.1:{port}", "security": "none", "maxAttempts": 1,
                                       "timeoutSeconds": timeout},
                              "retryInitialSeconds": 0.5, "retryHorizonSeconds": 600}}


def mailed_request(tag: str) -> bytes:
    return json.dumps({"mous": MOUS, "requestId": tag, "email": ["pi@example.org"]}).encode()


def test_mail_with_smtp_down_at_completion_is_sent_once_it_is_back(tmp_path, spool, agents):
    port = free_port()
    a = Agent(tmp_path, spool, "a", extra=mail_config(port, timeout=3))
    agents.append(a)
    a.start()
    drop(spool, "m", mailed_request("m"))
    doc = wait_state(spool, "m", lambda d: d["state"] in TERMINAL and (d.get("notifications") or [{}])[0].get("state") == "retrying",
                     timeout=20, what="the mail to be retrying")
    note = doc["notifications"][0]
    assert note["to"] == "pi@example.org" and note["nextAttemptAt"] and note["attempts"] >= 1 and note["error"], note
    smtp = TinySMTP(port)
    try:
        doc = wait_state(spool, "m", lambda d: d["notifications"][0]["state"] == "sent", timeout=20,
                         what="the mail to be sent once SMTP is back")
        assert len(smtp.messages) == 1 and smtp.messages[0]["to"] == ["pi@example.org"], smtp.messages
        assert doc["state"] == "failed", "the request's own outcome is unchanged"
        time.sleep(1.5)
        assert len(smtp.messages) == 1, "sent once"
        assert list((a.data / "mailqueue").glob("*.json")) == [], "a sent mail leaves the queue"
    finally:
        smtp.close()
    assert a.stop() == 0


def test_a_silent_smtp_server_does_not_hold_the_next_request(tmp_path, spool, agents):
    smtp = TinySMTP(silent=True)
    try:
        a = Agent(tmp_path, spool, "a", max_concurrent=1, extra=mail_config(smtp.port, timeout=30))
        agents.append(a)
        a.start()
        started = time.monotonic()
        for n in ("s1", "s2", "s3"):
            drop(spool, n, mailed_request(n))
        for n in ("s1", "s2", "s3"):
            doc = wait_state(spool, n, lambda d: d["state"] in TERMINAL, timeout=10, what=f"{n} to end while SMTP hangs")
            assert doc["notifications"][0]["state"] in ("pending", "retrying"), doc["notifications"]
        assert time.monotonic() - started < 10
        a.kill_if_running()
    finally:
        smtp.close()


# ---------------------------------------------------------------------------------------------------------------
# 2. A full disk ends in a clear state or a retry once space returns, never `running` forever


@pytest.fixture
def small_fs(tmp_path):
    """An 8 MiB tmpfs (a real full filesystem), unmounted afterwards."""
    import subprocess
    mnt = tmp_path / "smallfs"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mnt)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.fail(f"cannot mount a tmpfs (root needed): {r.stderr.strip()}")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def fill(fs: pathlib.Path) -> pathlib.Path:
    """Writes a file until the filesystem is full (ENOSPC); returns it (delete it to free the space)."""
    filler = fs / "filler"
    with open(filler, "wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError as e:
            assert e.errno == 28, e
    try:  # also the last partial page
        with open(filler, "ab") as f:
            while True:
                f.write(b"\0")
                f.flush()
    except OSError:
        pass
    return filler


def test_a_full_spool_filesystem_mid_job_resumes_when_space_returns(tmp_path, small_fs, agents, silent_archive):
    spool = small_fs / "spool"
    spool.mkdir()
    extra = hanging_config(silent_archive)
    extra["archive"] = {"maxAttempts": 1, "retryHorizonSeconds": 0}
    a = Agent(tmp_path, spool, "a", lease=60, extra=extra)
    agents.append(a)
    a.start()
    drop(spool, "full", archive_request("full"))
    wait_state(spool, "full", lambda d: d["state"] == "running", what="full running (archive hangs)")
    filler = fill(small_fs)
    silent_archive.close()  # the step fails now, and every later connection is refused
    wait_until(lambda: any("ENOSPC" in (l.get("message") or "") and str(spool) in (l.get("error") or "")
                           for l in a.log_lines()), 15, what="the agent to log ENOSPC with the path")
    assert read_status(spool, "full")["state"] == "running"  # nothing can be written on the full filesystem
    filler.unlink()
    doc = wait_state(spool, "full", lambda d: d["state"] in TERMINAL, timeout=20, what="a terminal state once space returns")
    assert doc["state"] == "failed" and doc["error"]["code"] == "archiveUnavailable", doc
    wait_until(lambda: job_dirs(spool, "jobs", "full") == [], 10, what="the job to move to finished/")
    assert a.stop() == 0


def test_a_full_working_area_says_enospc_and_retries_once_space_returns(tmp_path, small_fs, spool, agents):
    import sys
    sys.path.insert(0, str(pathlib.Path(__file__).parent))
    from test_alma_archive_server import PUBLIC, Server, make_package
    make_package(tmp_path / "pkg", PUBLIC)
    (tmp_path / "config.json").write_text(json.dumps({"mouses": [
        {"mous": PUBLIC, "project": "2019.1.00001.S", "groupOus": "uid://A001/X3f01/X1a4", "dataRights": "Public",
         "releaseDate": "2024-09-01T00:00:00.000", "packageDir": "pkg"}]}))
    archive = Server(tmp_path)
    try:
        restores = small_fs / "restores"
        restores.mkdir()
        filler = fill(small_fs)
        a = Agent(tmp_path, spool, "a", lease=3, extra={
            "sources": {"almaArchive": {"url": archive.url}},
            "agent": {"restoreDirectory": str(restores)},
            "archive": {"retryInitialSeconds": 1, "retryHorizonSeconds": 600}})
        agents.append(a)
        a.start()
        drop(spool, "area", json.dumps({"mous": PUBLIC, "source": {"archive": "alma"}}).encode())
        doc = wait_state(spool, "area", lambda d: d["state"] == "queued" and "ENOSPC" in (d.get("progress") or {}).get("message", ""),
                         timeout=30, what="status naming ENOSPC and a retry time")
        message = doc["progress"]["message"]
        assert "retry at" in message and str(restores) in message, message
        filler.unlink()
        doc = wait_state(spool, "area", lambda d: d["state"] in TERMINAL or (d["state"] == "running" and d["step"]["number"] > 1)
                         or (d["state"] == "queued" and "ENOSPC" not in (d.get("progress") or {}).get("message", "")),
                         timeout=30, what="the request to go on once space returns")
        assert "ENOSPC" not in json.dumps(doc.get("error") or {}), doc
        a.kill_if_running()
    finally:
        archive.stop()


def test_a_recipient_rejected_for_good_is_failed_at_once(tmp_path, spool, agents):
    smtp = TinySMTP(reject_rcpt=True)
    try:
        a = Agent(tmp_path, spool, "a", extra=mail_config(smtp.port, timeout=5))
        agents.append(a)
        a.start()
        drop(spool, "r", mailed_request("r"))
        doc = wait_state(spool, "r", lambda d: d["state"] in TERMINAL and (d.get("notifications") or [{}])[0].get("state") == "failed",
                         timeout=20, what="the rejected recipient to be failed")
        note = doc["notifications"][0]
        assert "550" in note["error"] and "nextAttemptAt" not in note, note
        wait_until(lambda: list((a.data / "mailqueue").glob("*.json")) == [], 10, what="the queue to be emptied")
        assert a.stop() == 0
    finally:
        smtp.close()


def test_a_full_data_directory_still_ends_requests_clearly(tmp_path, small_fs, spool, agents):
    """The journal, working areas, mail queue and metrics on a filled filesystem: requests still end with their own
    error in the status (on the spool), the agent keeps running and stops cleanly."""
    a = Agent(tmp_path, spool, "a")
    a.data = small_fs / "data"
    config = json.loads(a.config_path.read_text())
    config["dataDirectory"] = str(a.data)
    a.config_path.write_text(json.dumps(config))
    agents.append(a)
    a.start()
    filler = fill(small_fs)
    names = [f"d{i}" for i in range(5)]
    for n in names:
        drop(spool, n, json.dumps({"mous": MOUS, "requestId": n}).encode())
    for n in names:
        doc = wait_state(spool, n, lambda d: d["state"] in TERMINAL, timeout=20, what=f"{n} to end with the data directory full")
        assert doc["state"] == "failed" and doc["error"]["code"], doc
    assert a.process.poll() is None
    filler.unlink()
    assert a.stop() == 0


def test_queued_mail_survives_kill_9_and_is_sent_after_restart(tmp_path, spool, agents):
    port = free_port()
    a = Agent(tmp_path, spool, "a", extra=mail_config(port, timeout=3))
    agents.append(a)
    a.start()
    drop(spool, "k", mailed_request("k"))
    wait_state(spool, "k", lambda d: d["state"] in TERMINAL and (d.get("notifications") or [{}])[0].get("state") == "retrying",
               timeout=20, what="the mail to be retrying")
    a.send(signal.SIGKILL)
    a.wait_exit()
    assert len(list((a.data / "mailqueue").glob("*.json"))) == 1, "the queued mail is on disk"
    smtp = TinySMTP(port)
    try:
        b = Agent(tmp_path, spool, "a", extra=mail_config(port, timeout=3))  # same data directory: its mail queue
        b.log_path.unlink()
        agents.append(b)
        b.start()
        wait_state(spool, "k", lambda d: d["notifications"][0]["state"] == "sent", timeout=20, what="the mail sent after the restart")
        assert len(smtp.messages) == 1
        assert b.stop() == 0
    finally:
        smtp.close()
