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


@pytest.fixture(scope="module")
def scenario(tmp_path_factory):
    """One real agent: a request rejected at intake, one failing in step 1 (unknown MOUS) and mailed to the outbox."""
    tmp_path = tmp_path_factory.mktemp("operators")
    spool = tmp_path / "spool"
    spool.mkdir()
    (tmp_path / "textfile").mkdir()
    a = Agent(tmp_path, spool, extra={"metrics": {"textfile": str(tmp_path / "textfile/agent.prom")}})
    a.start()
    try:
        drop(a.spool, "broken", b'{"mous": 3}')
        drop(a.spool, "unknown", json.dumps({"mous": "uid://A001/X0/X1", "email": ["pi@example.org"]}).encode())
        wait_until(lambda: (read_status(a.spool, "broken") or {}).get("state") == "rejected", 30, what="the rejection")
        wait_until(lambda: (read_status(a.spool, "unknown") or {}).get("state") == "failed", 60, what="the failure")
        wait_until(lambda: a.log_has("mail queued in the outbox"), 30, what="the mail line")
        a.tmp = tmp_path
        yield a
        assert a.stop() == 0
    finally:
        a.kill_if_running()


def metric_families(text: str) -> dict[str, dict]:
    families: dict[str, dict] = {}
    for line in text.splitlines():
        m = re.match(r"# (HELP|TYPE) (\S+) (.*)", line)
        if m:
            families.setdefault(m.group(2), {})[m.group(1)] = m.group(3)
    return families


def test_metrics_follow_prometheus_conventions(scenario):
    agent = scenario
    promtool = require_tool("promtool", "prometheus")
    textfile = agent.tmp / "textfile/agent.prom"
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


def test_failures_rejections_and_mails_are_logged_at_their_level(scenario):
    lines = scenario.log_lines()
    assert not [l for l in lines if l.get("unparsed")], "every log line is one JSON object"
    rejected = [l for l in lines if l.get("message") == "request rejected" and l.get("request.name") == "broken"]
    assert rejected and rejected[0]["level"] == "error" and rejected[0]["error.code"]
    failed = [l for l in lines if l.get("message") == "request state changed" and l.get("state") == "failed"]
    assert len(failed) == 1 and failed[0]["level"] == "error", failed
    assert failed[0]["error.code"] == read_status(scenario.spool, "unknown")["error"]["code"]
    assert isinstance(failed[0]["duration.seconds"], (int, float)) and failed[0]["duration.seconds"] >= 0
    # Written to the outbox is not sent: the line (and the status) say queued.
    mails = [l for l in lines if l.get("message") in ("mail sent", "mail queued in the outbox", "mail not sent")]
    assert [l["message"] for l in mails] == ["mail queued in the outbox"], mails
    queued = wait_until(lambda: (read_status(scenario.spool, "unknown") or {}).get("notifications"), 30, what="the mail in the status")
    assert [(n["to"], n["state"]) for n in queued] == [("pi@example.org", "queued")], queued
    assert len(mails) == 1 and mails[0]["mail.to"] == "pi@example.org" and mails[0]["level"] == "info", mails
    assert mails[0]["mail.file"].endswith(".eml")
    # journalctl -p warning: only warning and worse, and it holds both failures.
    warnings = [l for l in lines if l["level"] in ("warning", "error", "critical")]
    assert {l.get("request.name") for l in warnings} >= {"broken", "unknown"}
    # Numbers are JSON numbers with the unit in the key, never "52.2 seconds" strings.
    for l in lines:
        for key, value in l.items():
            if isinstance(value, str):
                assert not re.fullmatch(r"-?[0-9.]+ ?(seconds|s|bytes|B)", value), (key, value)
            if key.endswith((".seconds", ".bytes")):
                assert isinstance(value, (int, float)), (key, value)
    started = next(l for l in lines if l.get("message") == "agent started")
    assert isinstance(started["max.concurrent"], int)


def test_alert_rules_pass_promtool():
    promtool = require_tool("promtool", "prometheus")
    check = subprocess.run([promtool, "check", "rules", str(RULES)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "SUCCESS: 6 rules found" in check.stdout
    for alert in ["DropboxAgentRequestsFailed", "DropboxAgentQueueStuck", "DropboxAgentSpoolNotWatched", "DropboxAgentDown"]:
        assert f"alert: {alert}" in RULES.read_text()


def test_systemd_notify_protocol_on_a_real_socket(tmp_path):
    """The real binary under a NOTIFY_SOCKET: READY=1 with STATUS=, WATCHDOG=1 pings, STOPPING=1 on SIGTERM.

    That pings stop when the work loop hangs is shown in-process (Tests/DropboxAgentTests/SystemdNotifyTests.swift):
    only there can the agent's actor be blocked without stopping the whole process (SIGSTOP would stop the timer too).
    """
    import os, socket, signal as sig, threading, time
    path = tmp_path / "notify.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(str(path))
    listener.settimeout(0.1)
    received: list[tuple[float, str]] = []
    stop = threading.Event()

    def read():
        while not stop.is_set():
            try:
                received.append((time.monotonic(), listener.recv(4096).decode()))
            except socket.timeout:
                pass

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    spool = tmp_path / "spool"
    spool.mkdir()
    agent = Agent(tmp_path, spool)
    env_backup = dict(os.environ)
    os.environ.update({"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "900000"})
    try:
        agent.start()
    finally:
        os.environ.clear()
        os.environ.update(env_backup)
    try:
        wait_until(lambda: any("READY=1" in m for _, m in received), 30, what="READY=1")
        ready = next(m for _, m in received if "READY=1" in m)
        assert "STATUS=0 running, 0 queued, 0 waiting" in ready.split("\n"), ready
        wait_until(lambda: sum("WATCHDOG=1" in m for _, m in received) >= 3, 10, what="three watchdog pings (every 0.3 s)")
        assert agent.stop() == 0
        wait_until(lambda: any("STOPPING=1" in m for _, m in received), 5, what="STOPPING=1")
        stopping = [t for t, m in received if "STOPPING=1" in m][0]
        first_ready = [t for t, m in received if "READY=1" in m][0]
        assert first_ready < stopping
    finally:
        stop.set()
        reader.join()
        listener.close()
        agent.kill_if_running()


# ---- the command line, finished --------------------------------------------------------------------------------

def cli(*args, env=None):
    from agentlib import run_cli
    r = run_cli(*args, env=env)
    return r.returncode, r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")


def write_config(tmp_path, text: str) -> pathlib.Path:
    path = tmp_path / "agent.json"
    path.write_text(text)
    return path


def test_check_logs_in_to_smtp_and_reports_the_exact_failure(tmp_path):
    from agentlib import start_smtp
    smtp = start_smtp(tmp_path / "smtp")
    try:
        def config(password):
            return write_config(tmp_path, json.dumps({
                "dataDirectory": str(tmp_path / "data"),
                "notifications": {"from": "agent@example.org", "smtp": {
                    "url": f"smtp://127.0.0.1:{smtp.port}", "security": "startTLS", "username": smtp.user,
                    "password": password, "caFile": str(smtp.ca_file), "timeoutSeconds": 10}}}))
        code, out, err = cli("check", "--config", str(config("wrong-password")))
        line = next(l for l in out.splitlines() if " smtp:" in l)
        assert code == 1 and line.startswith("FAIL"), out + err
        assert "refused the SMTP login of 'agent'" in line and "535" in line, line
        code, out, err = cli("check", "--config", str(config(smtp.password)))
        line = next(l for l in out.splitlines() if " smtp:" in l)
        assert line.startswith("ok") and "login accepted (STARTTLS, AUTH as agent); nothing sent" in line, out + err
        assert smtp.messages() == [], "check must send nothing"
    finally:
        smtp.stop()


@pytest.fixture
def world_readable_dir():
    """A directory nginx's workers (user nobody) can read: pytest's tmp_path is private to root."""
    import tempfile
    path = pathlib.Path(tempfile.mkdtemp(prefix="check-store-", dir="/tmp"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def ssha_user_line(user: str, password: str) -> str:
    """An nginx auth_basic_user_file line ({SSHA}: salted SHA-1, RFC 2307 style)."""
    import base64, hashlib, os
    salt = os.urandom(8)
    return f"{user}:{{SSHA}}" + base64.b64encode(hashlib.sha1(password.encode() + salt).digest() + salt).decode() + "\n"


def check_line(out: str, what: str) -> str:
    lines = [l for l in out.splitlines() if f" {what}:" in l]
    assert len(lines) == 1, out
    return lines[0]


def test_check_logs_in_to_the_archive_store(tmp_path, world_readable_dir):
    """Against real nginx requiring HTTP Basic (as an NGAS server with authorisation does): check sends the real
    NGAS STATUS request with the configured login and reports pass or the server's refusal, with the exit code."""
    from agentlib import CASA_VENV, start_nginx
    store = world_readable_dir / "store"
    store.mkdir()
    users = world_readable_dir / "users"
    users.write_text(ssha_user_line("ngasuser", "right-pass"))
    users.chmod(0o644)
    nginx = start_nginx(store, world_readable_dir / "nginx", users=users)
    password_file = tmp_path / "store-password"
    try:
        def check(login):
            archive = {"url": nginx.url}
            if login is not None:
                password_file.write_text(login[1] + "\n")
                archive.update({"username": login[0], "passwordFile": str(password_file)})
            config = write_config(tmp_path, json.dumps({"dataDirectory": str(tmp_path / "data"), "archive": archive,
                                                        "casa": {"modularVenv": str(CASA_VENV)}}))
            code, out, err = cli("check", "--config", str(config))
            return code, check_line(out, "archive store"), out + err

        code, line, out = check(("ngasuser", "wrong-pass"))
        assert code == 1 and line.startswith("FAIL"), out
        assert "the store refused the login" in line and "HTTP 401" in line and "not authorized" in line, line
        code, line, out = check(None)
        assert code == 1 and line.startswith("FAIL") and "asks for a login and none is configured" in line, line
        code, line, out = check(("ngasuser", "right-pass"))
        assert code == 0, "everything else passes with this configuration:\n" + out
        assert line.startswith("ok") and "STATUS answered SUCCESS from nginx-store; login as ngasuser accepted" in line, out
        # The pass is a real authenticated request: nginx logged the STATUS with the user it authenticated.
        status_lines = [l for l in nginx.access_log.read_text().splitlines() if "GET /STATUS " in l]
        assert len(status_lines) == 3 and status_lines[-1].split()[2] == "ngasuser" and '" 200 ' in status_lines[-1], status_lines
    finally:
        nginx.stop()


def test_check_verifies_the_alma_archive_token(tmp_path):
    """Against the ALMA archive stand-in: check asks the TAP service's VOSI availability with the token of
    sources.almaArchive.tokenFile; a token the archive does not accept fails with the server's answer."""
    from agentlib import CASA_VENV, start_alma_archive
    package = tmp_path / "pkg"
    package.mkdir()
    (tmp_path / "archive.json").write_text(json.dumps({"mouses": [{
        "mous": "uid://A001/X3f01/X1b0", "project": "2019.1.00001.S", "groupOus": "uid://A001/X3f01/X1af",
        "dataRights": "Proprietary", "releaseDate": "2099-01-01T00:00:00.000", "packageDir": "pkg", "token": "good-token"}]}))
    archive = start_alma_archive(tmp_path / "archive.json", tmp_path / "archive")
    token = tmp_path / "token"
    try:
        def check(value):
            sources = {"almaArchive": {"url": archive.url}}
            if value is not None:
                token.write_text(value)
                token.chmod(0o600)
                sources["almaArchive"]["tokenFile"] = str(token)
            (tmp_path / "data/archive").mkdir(parents=True, exist_ok=True)
            config = write_config(tmp_path, json.dumps({"dataDirectory": str(tmp_path / "data"), "sources": sources,
                                                        "casa": {"modularVenv": str(CASA_VENV)}}))
            code, out, err = cli("check", "--config", str(config))
            return code, check_line(out, "ALMA archive"), out + err

        code, line, out = check("expired-token\n")
        assert code == 1 and line.startswith("FAIL"), out
        assert "refused the token of" in line and "401" in line and 'error="invalid_token"' in line, line
        code, line, out = check("good-token\n")
        assert code == 0, "everything else passes with this configuration:\n" + out
        assert line.startswith("ok") and "/tap/availability: available" in line and "token accepted" in line, out
        code, line, out = check(None)
        assert line.startswith("ok") and "no token configured" in line, out
        code, line, out = check("")
        assert code == 1 and line.startswith("FAIL") and "is empty" in line, out
        def availability_requests():
            found = [r for r in archive.requests() if r["path"] == "/tap/availability"]
            return found if len(found) >= 3 else None
        availability = wait_until(availability_requests, 10, what="three availability requests in the log")
        assert [r["status"] for r in availability] == [401, 200, 200], availability
        assert [(r["headers"]["authorization"] or {}).get("tokenValid") for r in availability] == [False, True, None]
        assert archive.failures() == []
    finally:
        archive.stop()


def test_cancel_of_an_unknown_request_exits_1(tmp_path):
    spool = tmp_path / "spool"
    spool.mkdir()
    code, out, err = cli("cancel", "no-such-request", "--spool", str(spool))
    assert code == 1 and "there is no request named no-such-request" in err, (code, out, err)
    assert not (spool / "no-such-request.cancel").exists()
    (spool / "waiting.json").write_text('{"mous": "uid://A001/X0/X1"}')
    code, out, err = cli("cancel", "waiting", "--spool", str(spool))
    assert code == 0 and (spool / "waiting.cancel").exists(), err


def test_mistyped_subcommands_get_a_suggestion():
    code, out, err = cli("stauts")
    assert code == 2 and "unknown command 'stauts'. Did you mean 'status'?" in err, err
    code, out, err = cli("cancle", "x")
    assert code == 2 and "Did you mean 'cancel'?" in err, err


@pytest.mark.parametrize("text, expected", [
    ('{\n  "spool": {\n    "settleSeconds": 2,\n  }\n}', "line 4, column 3"),
    ('{"delivery": {"cleanWorkingArea": "onsuccess"}}', '$.delivery.cleanWorkingArea: must be one of never, onSuccess, always, not "onsuccess" (did you mean "onSuccess"?)'),
    ('{"archive": {"rawdataSource": "asdmExport"}}', '$.archive.rawdataSource: must be one of archive, command'),
    ('{"logging": {"level": "verbose"}}', "$.logging.level: must be one of trace, debug, info, notice, warning, error, critical"),
    ('{"logging": {"format": "JSON"}}', '$.logging.format: must be one of json, text, not "JSON" (did you mean "json"?)'),
    ('{"notifications": {"notifyOn": ["failure"]}}', "$.notifications.notifyOn: must be one of succeeded, failed, cancelled"),
    ('{"notifications": {"smtp": {"url": "smtp://x:587", "pasword": "p"}}}', "$.notifications.smtp.pasword: unknown key"),
    ('{"notifications": {"smtp": {"url": "smtp://x:587", "security": "starttls"}}}', "$.notifications.smtp.security: must be one of"),
    ('{"casa": {"installations": [{"name": "p", "kind": "pipeline", "home": "/opt/casa", "version": "6.5.4", "hom": "/x"}]}}', "$.casa.installations[0].hom: unknown key"),
    ('{"metrics": {"textfile": "/tmp/x.txt"}}', "$.metrics.textfile: must end in .prom"),
])
def test_configuration_errors_say_where(tmp_path, text, expected):
    config = write_config(tmp_path, text)
    code, out, err = cli("check", "--config", str(config))
    assert code == 1 and expected in out, out + err
    code, out, err = cli("status", "--config", str(config))
    assert code != 0 and expected in err, err


def test_owner_not_allowed_names_the_user(tmp_path):
    import os
    spool = tmp_path / "spool"
    spool.mkdir()
    os.chmod(tmp_path, 0o755)
    agent = Agent(tmp_path, spool, extra={"spool": {"allowedOwners": ["root"]}})
    agent.start()
    try:
        path = spool / ".intruder.json.tmp"
        path.write_text('{"mous": "uid://A001/X0/X1"}')
        os.chown(path, 65534, 65534)
        os.rename(path, spool / "intruder.json")
        wait_until(lambda: (read_status(spool, "intruder") or {}).get("state") == "rejected", 30, what="the rejection")
        message = read_status(spool, "intruder")["error"]["message"]
        assert "owned by user nobody (uid 65534)" in message, message
    finally:
        agent.stop()


def test_status_watch_prints_plain_tables_when_not_a_tty(tmp_path):
    import signal as sig, time
    from agentlib import agent_binary
    spool = tmp_path / "spool"
    spool.mkdir()
    status = {"schema": "dropbox-agent/status/v1", "request": "watched", "state": "running", "updatedAt": "2026-01-01T00:00:00Z",
              "step": {"number": 5, "name": "casa"}, "progress": {"fraction": 0.5, "etaSeconds": 90}, "history": []}
    (spool / "watched.status.json").write_text(json.dumps(status))
    proc = subprocess.Popen([str(agent_binary()), "status", "--watch", "--interval", "0.2", "--spool", str(spool)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(1)
        status.update(state="succeeded", progress=None, finishedAt="2026-01-01T00:01:00Z")
        (spool / ".tmp").write_text(json.dumps(status))
        (spool / ".tmp").rename(spool / "watched.status.json")
        time.sleep(1)
    finally:
        proc.send_signal(sig.SIGINT)
        out, err = proc.communicate(timeout=10)
    assert "\x1b[" not in out, "no terminal control codes in a pipe"
    tables = out.split("-- ")[1:]
    assert len(tables) == 2, out  # printed once per change, not every 0.2 s
    assert "[##########..........]  50%" in tables[0] and "eta 1 min 30 s" in tables[0]
    assert "succeeded" in tables[1]
