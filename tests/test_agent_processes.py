"""The real `dropbox-agent` binary as separate processes: several agents on one spool, inotify overflow,
hostile drops, never-torn status files and the command-line contract.

Every test has its own temporary directories and configuration, starts agents with subprocess.Popen, stops
them by PID (SIGTERM) and asserts a clean exit (status 0). Synchronisation is by polling with deadlines.
The binary is $DROPBOX_AGENT_BIN or .build/debug/dropbox-agent.

Until the restore steps are integrated, requests for a MOUS absent from the (empty) catalogue end `failed`
at step 1 (`unknownMous`, or `notImplemented` in builds without steps): quick terminal states, good for volume.
"""
from __future__ import annotations

import json
import os
import pathlib
import random
import signal
import subprocess
import threading
import time

import pytest

from agentlib import (
    TERMINAL,
    Agent,
    StatusWatcher,
    agent_binary,
    all_terminal,
    drop,
    read_status,
    request_bytes,
    run_cli,
    states,
    wait_until,
)

ROOT = pathlib.Path(__file__).resolve().parent.parent
INOTIFY_QUEUE = pathlib.Path("/proc/sys/fs/inotify/max_queued_events")


@pytest.fixture
def spool(tmp_path: pathlib.Path) -> pathlib.Path:
    s = tmp_path / "spool"
    s.mkdir()
    return s


@pytest.fixture
def agents():
    """Agents started by a test; any still running at the end are killed by PID (the test has failed then)."""
    started: list[Agent] = []
    yield started
    for a in started:
        a.kill_if_running()


def terminal_summary(spool: pathlib.Path, names: list[str]) -> dict[str, int]:
    summary: dict[str, int] = {}
    for state in states(spool, names).values():
        summary[str(state)] = summary.get(str(state), 0) + 1
    return summary


def assert_failed_with_code(doc: dict) -> None:
    assert doc["state"] == "failed", doc
    assert doc.get("error", {}).get("code"), f"failed without an error code: {doc}"


def wait_all_terminal(spool: pathlib.Path, names: list[str], timeout: float) -> None:
    """Waits until every request has a terminal status; on timeout says how far it got."""
    remaining = set(names)

    def progress():
        for n in list(remaining):
            doc = read_status(spool, n)
            if doc and doc.get("state") in TERMINAL:
                remaining.discard(n)
        return not remaining

    try:
        wait_until(progress, timeout, interval=0.1, what=f"{len(names)} requests to reach a terminal state")
    except AssertionError as e:
        raise AssertionError(f"{e}; {len(remaining)} not terminal: {terminal_summary(spool, sorted(remaining)[:2000])}") from None


def spool_leftovers(spool: pathlib.Path) -> list[str]:
    """Entries in the spool other than status files and the agent's work directory."""
    return sorted(e for e in os.listdir(spool) if not e.endswith(".status.json") and e != ".dropbox-agent")


# ---------------------------------------------------------------------------------------------------------------
# Two agents, one spool


def test_two_agents_share_one_spool_and_run_each_request_exactly_once(tmp_path, spool, agents, record_property):
    n = 1000
    a = Agent(tmp_path, spool, "a", max_concurrent=4)
    b = Agent(tmp_path, spool, "b", max_concurrent=4)
    agents += [a, b]
    a.start()
    b.start()
    watcher = StatusWatcher(spool)
    watcher.start()
    names = [f"req-{i:04d}" for i in range(n)]
    try:
        for i, name in enumerate(names):
            drop(spool, name, request_bytes(f"two-{i}"))
        wait_all_terminal(spool, names, timeout=600)
    finally:
        watcher.stop()
    assert watcher.problems == [], watcher.problems[:20]

    # Every request ended exactly once, failed at step 1 with an error code (empty catalogue).
    for name in names:
        assert_failed_with_code(read_status(spool, name))
    assert a.stop() == 0
    assert b.stop() == 0

    # Each job id appears once in finished/, and each request name in exactly one job.
    finished = os.listdir(spool / ".dropbox-agent" / "finished")
    assert len(finished) == len(set(finished)) == n, f"{len(finished)} finished jobs for {n} requests"
    job_names = sorted(job.split(".")[0] for job in finished)
    assert job_names == names
    assert os.listdir(spool / ".dropbox-agent" / "jobs") == []
    for name in names:
        doc = read_status(spool, name)
        assert pathlib.Path(doc["requestFile"]).is_file(), doc["requestFile"]
        assert "/finished/" in doc["requestFile"]

    # No request was claimed twice: across both journals, every name has exactly one `running` transition.
    per_agent = [a.running_transitions(), b.running_transitions()]
    overall: dict[str, int] = {}
    for counts in per_agent:
        for name, count in counts.items():
            overall[name] = overall.get(name, 0) + count
    assert sorted(overall) == names
    twice = {k: v for k, v in overall.items() if v != 1}
    assert not twice, f"requests with more than one running transition: {list(twice.items())[:10]}"

    # Nothing left in the spool but status files.
    assert spool_leftovers(spool) == []

    # A status never goes back (e.g. the agent that lost the claim writing `queued` over the winner's
    # `running` or terminal state).
    assert watcher.regressions == [], f"{len(watcher.regressions)} status regressions: {watcher.regressions[:10]}"

    split = (len(per_agent[0]), len(per_agent[1]))
    record_property("split", f"a={split[0]} b={split[1]}")
    print(f"\nwork split between the two agents: a ran {split[0]}, b ran {split[1]} of {n}")
    assert split[0] > 0 and split[1] > 0, f"one agent did all the work: {split}"


class SchedulingJitter(threading.Thread):
    """Pauses one of the agents (SIGSTOP … SIGCONT, by PID) for 1–30 ms at random, over and over: the stalls a
    loaded machine causes, made frequent, so that races between two agents' decisions actually happen."""

    def __init__(self, agents: list[Agent], seed: int = 1):
        super().__init__(daemon=True)
        self.agents = agents
        self.random = random.Random(seed)
        self.stop_event = threading.Event()
        self.pauses = 0

    def run(self) -> None:
        while not self.stop_event.is_set():
            victim = self.random.choice(self.agents)
            victim.send(signal.SIGSTOP)
            try:
                time.sleep(self.random.uniform(0.001, 0.03))
            finally:
                victim.send(signal.SIGCONT)
            self.pauses += 1
            time.sleep(self.random.uniform(0.001, 0.02))

    def stop(self) -> None:
        self.stop_event.set()
        self.join(timeout=10)


def test_two_agents_under_scheduling_jitter_leave_no_stale_status(tmp_path, spool, agents):
    """The agent that loses the race for a request must not overwrite the winner's status: if it writes `queued`
    after the winner's `failed`/`succeeded`, the request's status says `queued` forever although it has ended."""
    n = 1500
    a = Agent(tmp_path, spool, "a", max_concurrent=4)
    b = Agent(tmp_path, spool, "b", max_concurrent=4)
    agents += [a, b]
    a.start()
    b.start()
    jitter = SchedulingJitter([a, b])
    jitter.start()
    names = [f"jit-{i:05d}" for i in range(n)]
    try:
        for i, name in enumerate(names):
            drop(spool, name, request_bytes(f"jitter-{i}"))
        # Every request has been claimed and finished once the spool holds no request and no job is active.
        wait_until(lambda: not any(e.endswith(".json") and not e.endswith(".status.json") for e in os.listdir(spool))
                   and not os.listdir(spool / ".dropbox-agent" / "jobs"), 300, interval=0.2,
                   what="every request to be claimed and finished")
    finally:
        jitter.stop()
    finished = os.listdir(spool / ".dropbox-agent" / "finished")
    assert len(finished) == n
    try:
        wait_all_terminal(spool, names, timeout=20)
    except AssertionError:
        stale = {}
        for name in names:
            doc = read_status(spool, name)
            if doc["state"] not in TERMINAL:
                stale[name] = (doc["state"], doc.get("agent"), [h["state"] for h in doc.get("history", [])])
        raise AssertionError(
            f"{len(stale)} of {n} requests ended (their jobs are in finished/) but their status file says otherwise, "
            f"e.g. {list(stale.items())[:5]}; {jitter.pauses} pauses") from None
    assert a.stop() == 0
    assert b.stop() == 0


# ---------------------------------------------------------------------------------------------------------------
# Overflow of the kernel queue


def test_inotify_queue_overflow_is_recovered_by_a_rescan(tmp_path, spool, agents):
    writable = os.access(INOTIFY_QUEUE, os.W_OK)
    original = INOTIFY_QUEUE.read_text().strip()
    agent = Agent(tmp_path, spool, "overflow", max_concurrent=4)
    agents.append(agent)
    try:
        if writable:
            INOTIFY_QUEUE.write_text("256\n")
            queue_size = 256
            n = 1000
        else:
            queue_size = int(original)
            n = queue_size + 2000
        agent.start()
    finally:
        # The limit is fixed per inotify instance at inotify_init(): restore it as soon as the agent has its
        # instance, so other processes on the machine are affected for as short a time as possible.
        if writable:
            INOTIFY_QUEUE.write_text(original + "\n")
    assert INOTIFY_QUEUE.read_text().strip() == original

    names = [f"ovf-{i:05d}" for i in range(n)]
    agent.send(signal.SIGSTOP)
    try:
        for i, name in enumerate(names):
            drop(spool, name, request_bytes(f"ovf-{i}"))
    finally:
        agent.send(signal.SIGCONT)
    wait_all_terminal(spool, names, timeout=900)
    assert agent.log_has("inotify queue overflowed; rescanning the spool"), (
        f"{n} drops into a queue of {queue_size} events did not overflow it; the test proves nothing")
    for name in names:
        assert_failed_with_code(read_status(spool, name))
    assert agent.stop() == 0
    assert len(os.listdir(spool / ".dropbox-agent" / "finished")) == n
    assert spool_leftovers(spool) == []


# ---------------------------------------------------------------------------------------------------------------
# Hostile drops


def hostile_drops(spool: pathlib.Path, outside: pathlib.Path) -> dict[str, str]:
    """Creates each hostile entry; returns name → the error code the agent must give it."""
    expected = {}
    os.symlink("/etc/shadow", spool / "evil-symlink.json")
    expected["evil-symlink"] = "symlink"
    os.mkfifo(spool / "evil-fifo.json")
    expected["evil-fifo"] = "notRegularFile"
    target = outside / "linked.json"
    target.write_bytes(request_bytes("hard-link"))
    os.link(target, spool / "evil-hardlink.json")
    expected["evil-hardlink"] = "hardLink"
    (spool / "evil-directory.json").mkdir()
    expected["evil-directory"] = "notRegularFile"
    drop(spool, "evil-huge", b'{"mous": "' + b"x" * (10 * 1024 * 1024) + b'"}')
    expected["evil-huge"] = "tooLarge"
    drop(spool, "evil-utf8", b'{"mous": "uid://A001/X1/X1", "requestId": "caf\xc3\x28\xff\xfe"}')
    expected["evil-utf8"] = "invalidJSON"
    drop(spool, "evil-deep", b'{"a":' * 5000 + b"1" + b"}" * 5000)
    expected["evil-deep"] = "invalidJSON"
    drop(spool, "evil-deep-array", b"[" * 5000 + b"]" * 5000)
    expected["evil-deep-array"] = "invalidJSON"
    drop(spool, "evil-types", json.dumps({"mous": 42, "email": "not-a-list", "delivery": {"format": 7}}).encode())
    expected["evil-types"] = "invalidRequest"
    drop(spool, "evil-array", b'["uid://A001/X1/X1"]')
    expected["evil-array"] = "invalidRequest"
    drop(spool, "evil-null-byte", b'{"mous": "uid://A001/X1/X1"}\x00')
    expected["evil-null-byte"] = "invalidJSON"
    return expected


def test_hostile_drops_are_rejected_with_precise_codes_and_kept(tmp_path, spool, agents):
    outside = tmp_path / "outside"
    outside.mkdir()
    # Links, FIFOs and directories produce only IN_CREATE: the agent finds them by its rescan.
    agent = Agent(tmp_path, spool, "hostile", rescan=1)
    agents.append(agent)
    agent.start()
    started = time.monotonic()
    expected = hostile_drops(spool, outside)
    wait_all_terminal(spool, list(expected), timeout=60)
    rejected_dir = spool / ".dropbox-agent" / "rejected"
    for name, code in expected.items():
        doc = read_status(spool, name)
        assert doc["state"] == "rejected", (name, doc)
        assert doc["error"]["code"] == code, (name, doc["error"])
        assert doc["error"]["message"], (name, doc)
        kept = pathlib.Path(doc["requestFile"])
        assert kept.parent == rejected_dir, (name, kept)
        assert os.path.lexists(kept), f"{name}: kept entry {kept} is missing"
        reason = pathlib.Path(str(kept) + ".reason.txt")
        assert reason.is_file(), f"{name}: no reason file next to {kept}"
        assert f"code: {code}" in reason.read_text(), reason.read_text()
        assert not os.path.lexists(spool / f"{name}.json"), f"{name}.json is still in the spool"
    # The links are kept as links: the target was never followed, copied or moved.
    assert os.path.islink(read_status(spool, "evil-symlink")["requestFile"])
    assert os.readlink(read_status(spool, "evil-symlink")["requestFile"]) == "/etc/shadow"
    assert pathlib.Path("/etc/shadow").exists()
    assert (outside / "linked.json").read_bytes() == request_bytes("hard-link")
    shadow = read_status(spool, "evil-symlink")
    assert "root:" not in json.dumps(shadow)

    # A badly named request has no status file (it has no valid NAME) but is kept with a reason.
    drop(spool, "bad name", request_bytes("bad-name"))
    reason_files = wait_until(lambda: list(rejected_dir.glob("bad_name*.reason.txt")), 30,
                              what="the badly named request to be kept with a reason")
    assert not os.path.lexists(spool / "bad name.json")
    assert "code: invalidName" in reason_files[0].read_text(), reason_files[0].read_text()
    assert os.path.lexists(str(reason_files[0])[: -len(".reason.txt")])

    # The agent still handles a valid request afterwards (a FIFO did not block it, nothing wedged it).
    drop(spool, "after-hostile", request_bytes("after-hostile"))
    wait_all_terminal(spool, ["after-hostile"], timeout=60)
    assert_failed_with_code(read_status(spool, "after-hostile"))
    print(f"\nhostile drops handled in {time.monotonic() - started:.1f} s")
    assert agent.stop() == 0


# ---------------------------------------------------------------------------------------------------------------
# Status files are never torn


def test_status_files_are_never_torn_or_missing(tmp_path, spool, agents):
    n = 300
    agent = Agent(tmp_path, spool, "torn", max_concurrent=4)
    agents.append(agent)
    agent.start()
    watcher = StatusWatcher(spool)
    watcher.start()
    names = [f"torn-{i:03d}" for i in range(n)]
    try:
        for i, name in enumerate(names):
            drop(spool, name, request_bytes(f"torn-{i}"))
        wait_all_terminal(spool, names, timeout=300)
        # Let the reader go over the final files once more.
        reads = watcher.reads
        wait_until(lambda: watcher.reads >= reads + n, 60, what="another pass of the status reader")
    finally:
        watcher.stop()
    assert watcher.problems == [], watcher.problems[:20]
    assert watcher.regressions == [], watcher.regressions[:20]
    assert watcher.seen == {f"{n}.status.json" for n in names}
    assert watcher.reads > 3 * n, f"the reader made only {watcher.reads} reads; it proves little"
    print(f"\nstatus reader: {watcher.reads} reads of {len(watcher.seen)} files, no torn or missing file")
    assert agent.stop() == 0


# ---------------------------------------------------------------------------------------------------------------
# Command-line contract

SUBCOMMANDS = ["run", "submit", "status", "validate", "cancel", "check"]


def test_version_and_help():
    r = run_cli("--version")
    assert r.returncode == 0 and r.stdout.decode().strip(), r
    r = run_cli("--help")
    assert r.returncode == 0
    for sub in SUBCOMMANDS:
        assert sub in r.stdout.decode(), f"--help does not list {sub}"
    for sub in SUBCOMMANDS:
        r = run_cli(sub, "--help")
        assert r.returncode == 0, (sub, r)
        assert "USAGE" in r.stdout.decode().upper(), (sub, r.stdout)


@pytest.mark.parametrize("args", [["no-such-command"], ["submit"], ["status", "--no-such-option"], ["run", "--config"],
                                  ["cancel"], ["validate"]])
def test_usage_errors_exit_2(args):
    r = run_cli(*args)
    assert r.returncode == 2, f"`dropbox-agent {' '.join(args)}` exited {r.returncode}, the contract says 2: {r.stderr.decode()}"


def test_submit_status_cancel(tmp_path, spool):
    env = {"DROPBOX_AGENT_DATA": str(tmp_path / "data")}
    request = tmp_path / "my-request.json"
    request.write_bytes(request_bytes("cli-submit"))
    r = run_cli("submit", str(request), "--spool", str(spool), env=env)
    assert r.returncode == 0, r
    assert r.stdout.decode().strip() == "my-request"
    assert (spool / "my-request.json").read_bytes() == request.read_bytes()
    assert [e for e in os.listdir(spool) if e.startswith(".")] == [], "submit left a temporary file"

    # A request of that name is still waiting: refused, the existing one untouched.
    other = tmp_path / "other.json"
    other.write_bytes(request_bytes("cli-other"))
    r = run_cli("submit", str(other), "--spool", str(spool), "--name", "my-request", env=env)
    assert r.returncode != 0, r
    assert (spool / "my-request.json").read_bytes() == request.read_bytes()

    r = run_cli("submit", str(other), "--spool", str(spool), "--name", "explicit-name", env=env)
    assert r.returncode == 0 and r.stdout.decode().strip() == "explicit-name", r

    # An invalid request: exit 1, every problem with its JSON path, nothing dropped.
    invalid = tmp_path / "invalid.json"
    invalid.write_text(json.dumps({"mous": 42, "colour": "blue"}))
    r = run_cli("submit", str(invalid), "--spool", str(spool), env=env)
    assert r.returncode == 1, r
    err = r.stderr.decode()
    assert "$.mous" in err and "$.colour" in err, err
    assert not (spool / "invalid.json").exists()

    # cancel creates NAME.cancel.
    r = run_cli("cancel", "my-request", "--spool", str(spool), env=env)
    assert r.returncode == 0, r
    assert (spool / "my-request.cancel").exists()

    # status of an unknown name: exit 1.
    r = run_cli("status", "no-such-request", "--spool", str(spool), env=env)
    assert r.returncode == 1, r


def test_status_table_and_json_with_a_running_agent(tmp_path, spool, agents):
    agent = Agent(tmp_path, spool, "cli")
    agents.append(agent)
    agent.start()
    drop(spool, "table-one", request_bytes("table-one"))
    wait_all_terminal(spool, ["table-one"], timeout=60)

    r = run_cli("status", "--spool", str(spool))
    assert r.returncode == 0, r
    lines = r.stdout.decode().splitlines()
    assert lines[0].split()[:2] == ["NAME", "STATE"], lines
    row = [line for line in lines if line.startswith("table-one ")]
    assert row and row[0].split()[1] == "failed", lines

    r = run_cli("status", "table-one", "--spool", str(spool), "--json")
    assert r.returncode == 0, r
    doc = json.loads(r.stdout)
    assert doc == read_status(spool, "table-one")
    assert doc["state"] == "failed" and doc["request"] == "table-one"

    r = run_cli("status", "--spool", str(spool), "--json")
    assert r.returncode == 0, r
    assert [d["request"] for d in json.loads(r.stdout)] == ["table-one"]

    r = run_cli("status", "table-one", "--spool", str(spool))
    assert r.returncode == 0 and "failed" in r.stdout.decode(), r
    assert agent.stop() == 0


def test_submit_into_a_watched_spool_is_never_taken_for_a_hard_link(tmp_path, spool, agents):
    """`submit` must publish the request so that the running agent never sees a half-published file: with
    link(temp, NAME.json) + unlink(temp) the file briefly has two links, and the agent (which reports IN_CREATE of
    multi-link files at once) rejects it as `hardLink`."""
    n = 40
    agent = Agent(tmp_path, spool, "submit", max_concurrent=4)
    agents.append(agent)
    agent.start()
    names = [f"submitted-{i:02d}" for i in range(n)]
    for i, name in enumerate(names):
        request = tmp_path / f"{name}.json"
        request.write_bytes(request_bytes(f"submitted-{i}"))
        r = run_cli("submit", str(request), "--spool", str(spool))
        assert r.returncode == 0, r
    wait_all_terminal(spool, names, timeout=120)
    rejected = {n: read_status(spool, n)["error"]["code"] for n in names if read_status(spool, n)["state"] == "rejected"}
    assert rejected == {}, f"{len(rejected)} of {n} submitted requests were rejected: {rejected}"
    for name in names:
        assert_failed_with_code(read_status(spool, name))
    assert agent.stop() == 0


def test_validate_exit_status(tmp_path):
    valid = sorted((ROOT / "examples/requests").glob("*.json"))
    invalid = sorted((ROOT / "examples/requests/invalid").glob("*.json"))
    assert valid and invalid
    for path in valid:
        r = run_cli("validate", str(path))
        assert r.returncode == 0, (path.name, r)
    for path in invalid:
        r = run_cli("validate", str(path))
        assert r.returncode == 1, (path.name, r)
        assert "$" in r.stdout.decode() + r.stderr.decode(), (path.name, r)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_stops_the_agent_cleanly(tmp_path, spool, agents, sig):
    agent = Agent(tmp_path, spool, "signal")
    agents.append(agent)
    agent.start()
    drop(spool, "before-stop", request_bytes(f"before-stop-{sig}"))
    wait_all_terminal(spool, ["before-stop"], timeout=60)
    started = time.monotonic()
    code = agent.stop(sig, timeout=10)
    elapsed = time.monotonic() - started
    assert code == 0, f"exit status {code} after {sig!r}:\n{agent.log_text()[-2000:]}"
    assert elapsed < 5, f"took {elapsed:.1f} s to stop"
    assert agent.log_has("agent stopped cleanly"), agent.log_text()[-2000:]
    for line in agent.log_lines():
        assert not line.get("unparsed"), f"a log line that is not JSON: {line['message']!r}"
