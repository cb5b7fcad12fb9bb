"""Deliveries over their lifetime (issue 13), through the real binary with real CASA: a request linked to an
identical running one and a request that reuses an earlier restore both expire like any delivery (their status
files keep saying what was delivered, and that it expired); the restore cache's staging directory left by a
`kill -9` while a restore was kept for reuse is swept at the next start and periodically, never one a live writer
owns."""
import json
import os
import pathlib
import socket
import subprocess

import jsonschema
import pytest

from agentlib import (  # noqa: F401 (agents is a fixture)
    agents, FIXTURE, MOUS_A, RestoreAgent as Agent, require_prerequisites, start_nginx, wait_until as wait_for,
)

ROOT = pathlib.Path(__file__).resolve().parent.parent
STATUS_SCHEMA = json.loads((ROOT / "schemas/status.schema.json").read_text())


@pytest.fixture(scope="module", autouse=True)
def prerequisites():
    require_prerequisites()


def log_entries(agent, message):
    out = []
    for path in agent.logs:
        for line in path.read_text().splitlines():
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue
            if entry.get("message") == message:
                out.append(entry)
    return out


def test_linked_and_reused_requests_get_an_expiry_and_then_say_their_delivery_expired(tmp_path, agents):
    store = start_nginx(FIXTURE / "store", tmp_path / "store")
    try:
        # 0.001 days = 86.4 s: long enough to drop the other two requests before the first delivery goes.
        agent = Agent(tmp_path, store.url, extra={
            "delivery": {"retentionDays": 0.001},
            "metrics": {"textfile": str(tmp_path / "metrics.prom")},
        })
        agents.append(agent)
        agent.start()
        request = {"mous": MOUS_A, "requestId": "life-1"}
        agent.drop("original", request)
        agent.wait("original", lambda s: s["state"] == "running", 120, "the original running")
        # Identical while the original runs: linked to it, ends with it, shares its delivery.
        agent.drop("linked", request)
        original = agent.wait_terminal("original")
        assert original["state"] == "succeeded", agent.log_tail()
        linked = wait_for(lambda: (lambda s: s if s and s["state"] == "succeeded" else None)(agent.status("linked")), 60,
                          "the linked request to end with its original")
        assert linked["linkedTo"]["request"] == "original"
        # Another request id: not linked, the restore is reused (no CASA), a delivery of its own.
        agent.drop("reused", {"mous": MOUS_A, "requestId": "life-2"})
        reused = agent.wait_terminal("reused")
        assert reused["state"] == "succeeded", agent.log_tail()
        assert "linkedTo" not in reused
        assert any(e.get("request.name") == "reused" for e in log_entries(agent, "restore reused")), agent.log_tail()

        for doc in (original, linked, reused):
            jsonschema.validate(doc, STATUS_SCHEMA)
            assert doc["result"].get("expiresAt") and "expiredAt" not in doc["result"], doc["result"]
        assert linked["result"]["deliveryPath"] == original["result"]["deliveryPath"]
        assert linked["result"]["expiresAt"] == original["result"]["expiresAt"]
        assert reused["result"]["deliveryPath"] != original["result"]["deliveryPath"]
        assert pathlib.Path(reused["result"]["deliveryPath"]).is_dir()

        expired = {}
        for name, before in (("original", original), ("linked", linked), ("reused", reused)):
            expired[name] = wait_for(lambda: (lambda s: s if s and s["result"].get("expiredAt") else None)(agent.status(name)),
                                     300, f"{name}: the delivery to expire")
            doc = expired[name]
            jsonschema.validate(doc, STATUS_SCHEMA)
            assert doc["state"] == "succeeded"
            # Still says what was delivered.
            for key in ("deliveryPath", "url", "measurementSets", "expiresAt"):
                assert doc["result"][key] == before["result"][key], (name, key)
            assert any("expired" in w for w in doc.get("warnings") or []), (name, doc.get("warnings"))
            assert not pathlib.Path(doc["result"]["deliveryPath"]).exists(), name
        assert expired["reused"]["result"]["expiredAt"] >= expired["original"]["result"]["expiredAt"]
        # Two delivery directories removed (the linked request shares the original's): counted as two.
        wait_for(lambda: "dropbox_agent_deliveries_expired_total 2" in (tmp_path / "metrics.prom").read_text(), 60,
                 "the expiry metric")
        expired_logs = log_entries(agent, "delivery expired")
        assert len(expired_logs) == 3, [e.get("job.id") for e in expired_logs]
        assert agent.stop() == 0
    finally:
        store.stop()


def dead_pid():
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


def plant_staging(cache, name, owner):
    d = cache / name
    (d / "products" / "x.ms").mkdir(parents=True)
    (d / "owner.json").write_text(json.dumps(owner))
    return d


def test_a_restore_cache_staging_left_by_kill_9_is_swept_at_start_and_periodically_never_a_live_one(tmp_path, agents, monkeypatch):
    store = start_nginx(FIXTURE / "store", tmp_path / "store")
    try:
        agent = Agent(tmp_path, store.url, extra={"agent": {"sweepIntervalSeconds": 10}})
        agents.append(agent)
        # The agent kills itself with SIGKILL when the staging directory holds the whole restore, before the rename.
        monkeypatch.setenv("DROPBOX_AGENT_CRASH_AT", "restore-cache-staged")
        agent.start()
        monkeypatch.delenv("DROPBOX_AGENT_CRASH_AT")
        agent.drop("kept", {"mous": MOUS_A, "requestId": "kept-1"})
        assert agent.proc.wait(900) == -9, agent.log_tail()
        killed_pid = agent.proc.pid
        cache = tmp_path / "data" / "restore-cache"
        left = [p for p in cache.iterdir() if p.name.startswith(".staging-")]
        assert len(left) == 1, list(cache.iterdir())
        owner = json.loads((left[0] / "owner.json").read_text())
        assert owner["pid"] == killed_pid and pathlib.Path(owner["jobDirectory"]).is_dir()
        assert (left[0] / "products").is_dir() and not [p for p in cache.iterdir() if not p.name.startswith(".")]

        # A staging a live process is writing (this test's own pid, on this host, for a job that exists).
        boot = pathlib.Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        live_job = tmp_path / "live-job"
        live_job.mkdir()
        live = plant_staging(cache, ".staging-" + "e" * 64 + "-job-live",
                             {"host": socket.gethostname(), "pid": os.getpid(), "bootId": boot,
                              "jobDirectory": str(live_job)})

        agent.start()
        # Swept at start: the killed agent's staging; the live one stays.
        wait_for(lambda: not left[0].exists(), 60, "the killed agent's staging swept at start")
        # (The sweep logs once it is over: polled, not read at once.)
        wait_for(lambda: [e for e in log_entries(agent, "leftovers swept") if left[0].name in str(e.get("restore.cache.stagings"))],
                 30, "the sweep's log line naming it")
        assert live.exists()
        # The job resumes and keeps its restore after all: a complete entry, no staging of its own left.
        status = agent.wait_terminal("kept")
        assert status["state"] == "succeeded", agent.log_tail()
        entries = wait_for(lambda: [p for p in cache.iterdir() if (p / "entry.json").exists()] or None, 60, "the kept restore")
        assert len(entries) == 1 and not (entries[0] / "owner.json").exists()
        assert [p.name for p in cache.iterdir() if p.name.startswith(".staging-")] == [live.name]

        # Periodically: a staging whose writer died on this host while the agent runs, and one whose job has ended.
        dead = plant_staging(cache, ".staging-" + "f" * 64 + "-job-dead",
                             {"host": socket.gethostname(), "pid": dead_pid(), "bootId": boot,
                              "jobDirectory": str(live_job)})
        ended = plant_staging(cache, ".staging-" + "a" * 64 + "-job-ended",
                              {"host": "another-host", "pid": os.getpid(), "bootId": None,
                               "jobDirectory": str(tmp_path / "no-such-job")})
        wait_for(lambda: not dead.exists() and not ended.exists(), 90, "the periodic sweep")
        assert live.exists() and (live / "products" / "x.ms").is_dir(), "a live writer's staging is never swept"
        # A request for the same inputs reuses the entry the resumed job kept.
        agent.drop("again", {"mous": MOUS_A, "requestId": "kept-2"})
        again = agent.wait_terminal("again")
        assert again["state"] == "succeeded"
        assert any(e.get("request.name") == "again" for e in log_entries(agent, "restore reused"))
        assert agent.stop() == 0
    finally:
        store.stop()
