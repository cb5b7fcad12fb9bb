"""Operators' view of a real agent: Prometheus metrics and alert rules (promtool), logs by level, systemd notify.

Tools are required, never skipped: a missing one fails with the command that installs it.
"""
from __future__ import annotations

import json
import pathlib
import re
import shutil
import subprocess

import pytest

from agentlib import ROOT, Agent, drop, read_status, wait_until

RULES = ROOT / "packaging/prometheus/dropbox-agent.rules.yml"


def require_tool(name: str, package: str) -> str:
    path = shutil.which(name)
    assert path, f"{name} not found: install it with `sudo apt-get install --no-install-recommends {package}` (or `make deps`)"
    return path


@pytest.fixture
def agent(tmp_path):
    spool = tmp_path / "spool"
    spool.mkdir()
    a = Agent(tmp_path, spool, extra={"metrics": {"textfile": str(tmp_path / "textfile/agent.prom")}})
    (tmp_path / "textfile").mkdir()
    yield a
    a.kill_if_running()


def metric_families(text: str) -> dict[str, dict]:
    families: dict[str, dict] = {}
    for line in text.splitlines():
        m = re.match(r"# (HELP|TYPE) (\S+) (.*)", line)
        if m:
            families.setdefault(m.group(2), {})[m.group(1)] = m.group(3)
    return families


def test_metrics_follow_prometheus_conventions(agent, tmp_path):
    promtool = require_tool("promtool", "prometheus")
    agent.start()
    # One request rejected at intake, one failing in step 1 (no catalogue entry): outcomes by code.
    drop(agent.spool, "broken", b'{"mous": 3}')
    drop(agent.spool, "unknown", json.dumps({"mous": "uid://A001/X0/X1"}).encode())
    wait_until(lambda: (read_status(agent.spool, "broken") or {}).get("state") == "rejected", 30, what="the rejection")
    wait_until(lambda: (read_status(agent.spool, "unknown") or {}).get("state") == "failed", 60, what="the failure")
    textfile = tmp_path / "textfile/agent.prom"
    assert not (agent.data / "metrics.prom").exists(), "metrics.textfile must replace the default path"

    def finished_counted():
        text = textfile.read_text() if textfile.exists() else ""
        return text if 'state="failed"' in text and 'state="rejected"' in text else None

    text = wait_until(finished_counted, 30, interval=0.2, what="the textfile to count both outcomes")
    check = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True)
    assert check.returncode == 0, f"promtool check metrics:\n{check.stdout}{check.stderr}\n{text}"

    families = metric_families(text)
    for name, meta in families.items():
        assert "HELP" in meta and "TYPE" in meta, name
        if meta["TYPE"] == "counter":
            assert name.endswith("_total"), name
    for name in ["dropbox_agent_step_duration_seconds", "dropbox_agent_request_duration_seconds",
                 "dropbox_agent_fetched_bytes_total", "dropbox_agent_cache_hits_total", "dropbox_agent_cache_misses_total",
                 "dropbox_agent_requests_finished_total", "dropbox_agent_last_success_timestamp_seconds",
                 "dropbox_agent_queue_length", "dropbox_agent_oldest_queued_age_seconds",
                 "dropbox_agent_casa_processes_running", "dropbox_agent_spool_watched"]:
        assert name in families, name
    assert families["dropbox_agent_step_duration_seconds"]["TYPE"] == "histogram"
    failed_code = read_status(agent.spool, "unknown")["error"]["code"]
    rejected_code = read_status(agent.spool, "broken")["error"]["code"]
    assert f'dropbox_agent_requests_finished_total{{state="failed",code="{failed_code}"}} 1' in text
    assert f'dropbox_agent_requests_finished_total{{state="rejected",code="{rejected_code}"}} 1' in text
    assert re.search(r'^dropbox_agent_request_duration_seconds_count\{state="failed"\} 1$', text, re.M)
    assert agent.stop() == 0


def test_alert_rules_pass_promtool():
    promtool = require_tool("promtool", "prometheus")
    check = subprocess.run([promtool, "check", "rules", str(RULES)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "SUCCESS: 6 rules found" in check.stdout
    for alert in ["DropboxAgentRequestsFailed", "DropboxAgentQueueStuck", "DropboxAgentSpoolNotWatched", "DropboxAgentDown"]:
        assert f"alert: {alert}" in RULES.read_text()
