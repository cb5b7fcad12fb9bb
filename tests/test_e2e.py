"""End to end through the real binary: real CASA (modular), nginx as the NGAS store, the fault-injecting store,
aiosmtpd with STARTTLS + AUTH. Each test drops requests as an outside system would and reads only the
files a user sees: status files, delivered measurement sets, received mail."""
import json
import os
import pathlib
import signal

import jsonschema
import pytest

from agentlib import (  # noqa: F401 (agents is a fixture)
    agents,
    FIXTURE, MOUS_A, MOUS_B, RestoreAgent, casa_processes, compare_ms, require_prerequisites, start_fault_store,
    start_nginx, start_smtp, wait_until,
)

STATUS_SCHEMA = json.loads((pathlib.Path(__file__).resolve().parent.parent / "schemas/status.schema.json").read_text())
FIXTURE_INFO = {}


@pytest.fixture(scope="module", autouse=True)
def prerequisites():
    require_prerequisites()
    FIXTURE_INFO.update(json.loads((FIXTURE / "fixture.json").read_text()))


@pytest.fixture
def services(tmp_path):
    started = []

    def start(kind, **kw):
        s = {"nginx": lambda: start_nginx(FIXTURE / "store", tmp_path / "nginx"),
             "faults": lambda: start_fault_store(FIXTURE / "store", tmp_path / "faults"),
             "smtp": lambda: start_smtp(tmp_path / "smtp")}[kind]()
        started.append(s)
        return s

    yield start
    for s in started:
        s.stop()



def assert_delivered_like_reference(status):
    result = status["result"]
    delivered = pathlib.Path(result["deliveryPath"])
    assert sorted(result["measurementSets"]) == sorted(p.name for p in delivered.glob("*.ms"))
    assert result["measurementSets"], "no measurement set delivered"
    for ms in result["measurementSets"]:
        assert (delivered / (ms + ".flagversions")).is_dir(), f"{ms}.flagversions delivered"
        code, report = compare_ms(delivered / ms, FIXTURE / "reference" / ms)
        assert code == 0, f"{ms} differs from the reference: {report}"
    assert (delivered / "MANIFEST.json").exists() or any(delivered.glob("*MANIFEST*")), "a manifest of files with sizes and checksums"


def mail_to(smtp, address):
    return [m for m in smtp.messages() if address in m["rcpt_tos"]]


def test_native_request_restores_delivers_and_mails_then_a_second_request_fetches_nothing(tmp_path, services, agents):
    nginx, smtp = services("nginx"), services("smtp")
    agent = RestoreAgent(tmp_path, nginx.url, smtp=smtp).start()
    agents.append(agent)
    agent.drop("native", {"mous": MOUS_A, "email": ["pi@example.org"], "requestId": "e2e-native"})
    status = agent.wait_terminal("native")
    assert status["state"] == "succeeded", json.dumps(status, indent=1)
    jsonschema.validate(status, STATUS_SCHEMA)
    assert [h["step"]["number"] for h in status["history"] if h.get("step") and h["state"] == "running"] == [1, 2, 3, 4, 5, 6]
    assert_delivered_like_reference(status)
    mails = wait_until(lambda: mail_to(smtp, "pi@example.org"), 30, "the success mail")
    text = mails[0]["text"]
    assert status["result"]["url"] in text and "ready to download" in text
    for header in ("Date:", "Message-ID:", "From:", "To:", "Subject:"):
        assert header in text
    assert mails[0]["tls"] and mails[0]["auth_user"] == "agent"
    # Mail goes through the durable queue: the status records the outcome once it is known.
    status = wait_until(lambda: (lambda s: s if [n["state"] for n in s.get("notifications") or []] == ["sent"] else None)(
        agent.status("native")), 30, "the mail recorded as sent in the status")
    assert [{"to": n["to"], "state": n["state"]} for n in status["notifications"]] == [{"to": "pi@example.org", "state": "sent"}]
    jsonschema.validate(status, STATUS_SCHEMA)
    # The CASA that ran and the one that made the tables (the fixture's manifest says 6.5.4.9), said out loud.
    assert status["casa"] == {"version": "6.7.0.31", "manifestVersion": "6.5.4.9", "installation": "modular"}, status.get("casa")
    assert any("6.5.4.9" in w and "6.7.0.31" in w for w in status["warnings"]), status.get("warnings")
    assert "6.5.4.9" in text and "6.7.0.31" in text and "different versions" in text
    readme = (pathlib.Path(status["result"]["deliveryPath"]) / "README.txt").read_text()
    assert "CASA 6.7.0.31" in readme and "CASA 6.5.4.9" in readme and "WARNING" in readme, readme
    fetched = nginx.retrieves()
    assert fetched > 0

    # (6) A second request for the same MOUS: everything comes from the cache.
    agent.drop("again", {"mous": MOUS_A, "requestId": "e2e-again"})
    again = agent.wait_terminal("again")
    assert again["state"] == "succeeded"
    assert nginx.retrieves() == fetched, "the second restore fetched nothing from the store"
    assert_delivered_like_reference(again)
    assert agent.stop() == 0


def test_workflow_event_form(tmp_path, services, agents):
    nginx, smtp = services("nginx"), services("smtp")
    agent = RestoreAgent(tmp_path, nginx.url, smtp=smtp).start()
    agents.append(agent)
    passes = [eb["uid"] for eb in FIXTURE_INFO["execBlocks"] if eb["qa0"] == "Pass"]
    assert len(passes) == 2
    event = json.loads((pathlib.Path(__file__).resolve().parent.parent / "examples/requests/workflow-event.json").read_text())
    event["metadata"].update({
        "ousStatusId": MOUS_A, "projectCodeOrDataType": "2023.1.00042.S", "cliCorrId": "3f0c2d9e-e2e",
        "email": "pi@example.org", "casaHome": str(agent_casa_home()),
    })
    event["metadata"]["fileSetIds"] = passes
    agent.drop("event", event)
    status = agent.wait_terminal("event")
    assert status["state"] == "succeeded", json.dumps(status, indent=1)
    assert status["requestId"] == "3f0c2d9e-e2e"
    assert_delivered_like_reference(status)
    wait_until(lambda: mail_to(smtp, "pi@example.org"), 30, "the success mail")
    assert agent.stop() == 0


def agent_casa_home():
    from agentlib import CASA_VENV
    return CASA_VENV


def test_manifest_without_a_sessions_caltables_fails_before_the_first_raw_byte(tmp_path, services, agents):
    # The fault store (no fault selected) counts every file requested: the small products are fetched and
    # cross-checked in step 1, so a bad manifest stops the restore before any ASDM is requested.
    faults, smtp = services("faults"), services("smtp")
    agent = RestoreAgent(tmp_path, faults.url, smtp=smtp).start()
    agents.append(agent)
    agent.drop("broken", {"mous": MOUS_B, "email": ["pi@example.org"]})
    status = agent.wait_terminal("broken", timeout=120)
    assert status["state"] == "failed"
    assert status["step"]["number"] == 1 and status["step"]["name"] == "prepare", status["step"]
    requested = faults.counters()["files"]
    assert any(f.endswith("pipeline_manifest.xml") for f in requested), requested
    assert not [f for f in requested if f.endswith(".asdm.sdm.tar.gz")], f"raw data requested despite a bad manifest: {sorted(requested)}"
    assert status["error"]["code"].startswith("manifest"), status["error"]
    assert "session_3" in status["error"]["message"] and "caltables" in status["error"]["message"]
    assert status["error"].get("hint")
    assert not any(h.get("step", {}).get("number") == 5 for h in status["history"]), "CASA never started"
    root = pathlib.Path(status["workingArea"])
    assert not (root / "logs/casa-stdout.log").exists(), "no CASA process ran"
    mails = wait_until(lambda: mail_to(smtp, "pi@example.org"), 30, "the failure mail")
    # The PI's mail says it failed and that the operators know, with the request id; the error code, the working
    # area and other server details are for the operators' message, never the astronomer's.
    text = mails[0]["text"]
    assert "failed" in text and "operators have been told" in text and "broken" in text, text
    assert str(root) not in text and status["error"]["code"] not in text, text
    # The terminal status names the request's final home just before the request is moved there.
    wait_until(lambda: pathlib.Path(status["requestFile"]).exists(), 10, "the failed request kept in its final home")
    assert agent.stop() == 0


def test_store_503_then_truncated_body_is_retried_and_succeeds(tmp_path, services, agents):
    faults = services("faults")
    agent = RestoreAgent(tmp_path, faults.url + "/503-truncate-then-ok").start()
    agents.append(agent)
    agent.drop("flaky", {"mous": MOUS_A})
    status = agent.wait_terminal("flaky")
    assert status["state"] == "succeeded", json.dumps(status.get("error"))
    counters = faults.counters()
    assert all(n >= 3 for key, n in counters["faults"].items()), counters  # 503, truncated, then whole
    assert_delivered_like_reference(status)
    assert agent.stop() == 0


def test_sigkill_during_rawdata_then_restart_resumes_and_fetches_each_file_once(tmp_path, services, agents):
    faults = services("faults")
    slow_url = faults.url + "/slow"
    agent = RestoreAgent(tmp_path, slow_url).start()
    agents.append(agent)
    agent.drop("killed", {"mous": MOUS_A})
    agent.wait("killed", lambda s: (s.get("step") or {}).get("name") == "rawdata" and (s.get("progress") or {}).get("bytesDone", 0) > 400_000,
               timeout=120, what="step 2 under way")
    agent.proc.send_signal(signal.SIGKILL)
    agent.proc.wait(10)
    before = faults.counters()["files"]
    assert agent.status("killed")["state"] == "running"
    agent.start()
    status = agent.wait_terminal("killed")
    assert status["state"] == "succeeded", json.dumps(status.get("error"))
    assert status["attempt"] == 2
    assert_delivered_like_reference(status)
    sizes = {p.name: p.stat().st_size for p in (FIXTURE / "store").iterdir()}
    after = faults.counters()["files"]
    for file_id, c in before.items():
        again = after[file_id]["bytes"] - c["bytes"]
        # What reached the disk before the kill is not fetched again: the restart resumes with Range.
        assert again < sizes[file_id], f"{file_id}: {again} bytes fetched again for {sizes[file_id]} — restarted, not resumed"
    for file_id, c in after.items():
        assert c["bytes"] < 2 * sizes[file_id], f"{file_id} fetched {c['bytes']} bytes for {sizes[file_id]}"
    finished = list((agent.spool / ".dropbox-agent/finished").iterdir())
    assert len(finished) == 1, "one job, run to completion once"
    assert agent.stop() == 0


def test_cancel_during_casa_leaves_no_casa_process(tmp_path, services, agents):
    nginx = services("nginx")
    agent = RestoreAgent(tmp_path, nginx.url).start()
    agents.append(agent)
    agent.drop("stopme", {"mous": MOUS_A})
    agent.wait("stopme", lambda s: (s.get("step") or {}).get("name") == "casa", timeout=300, what="step 5")
    wait_until(lambda: casa_processes(), 60, "CASA to run")
    r = agent.cli("cancel", "stopme", "--spool", str(agent.spool))
    status = agent.wait_terminal("stopme", timeout=60)
    assert status["state"] == "cancelled"
    wait_until(lambda: not casa_processes(), 20, "no CASA process left")
    assert agent.stop() == 0


def test_a_full_download_area_is_retried_and_delivered_once_space_returns(tmp_path, services, agents):
    """Issue 10 item 2: the download area on a real, filled 64 MiB tmpfs. Step 6 fails with ENOSPC; the request
    waits (`queued`, a retry time, ENOSPC and the path) instead of failing; freed, it is delivered."""
    import subprocess
    nginx = services("nginx")
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(downloads)], check=True)
    try:
        filler = downloads / "filler"
        with open(filler, "wb") as f:
            try:
                while True:
                    f.write(b"\0" * 1048576)
                    f.flush()
            except OSError:
                pass
        agent = RestoreAgent(tmp_path, nginx.url, extra={"delivery": {"directory": str(downloads)},
                                                  "archive": {"retryInitialSeconds": 2}}).start()
        agents.append(agent)
        agent.drop("full", {"mous": MOUS_A, "requestId": "e2e-full-downloads"})

        def waiting():
            s = agent.status("full")
            assert not (s and s["state"] in ("succeeded", "failed")), json.dumps(s, indent=1)
            msg = ((s or {}).get("progress") or {}).get("message", "")
            return s if s and s["state"] == "queued" and "ENOSPC" in msg else None
        status = wait_until(waiting, 600, "step 6 to wait for space")
        message = status["progress"]["message"]
        assert "step 6 deliver, retry at" in message and str(downloads) in message, message
        filler.unlink()
        status = agent.wait_terminal("full")
        assert status["state"] == "succeeded", json.dumps(status, indent=1)
        assert_delivered_like_reference(status)
        assert agent.stop() == 0
    finally:
        subprocess.run(["umount", "-l", str(downloads)], check=False)


def test_configured_archive_limits_reach_casas_unpacking_of_the_caltables(tmp_path, services, agents):
    """Issue 10: one set of limits on both sides. With `archive.limits` at 4:1 beyond 100 kB, the agent's own
    unpacking passes (auxiliary products 583 B, ASDM tarballs 2.7:1; flag versions are bounded by their ASDM's
    size), but the session caltables (43 kB expanding to 340 kB, 7.9:1) must be refused by the CASA side's
    safe_extract, with the numbers the agent computed (`<logs>/archive-limits.json`), before any CASA process."""
    nginx = services("nginx")
    agent = RestoreAgent(tmp_path, nginx.url, extra={"archive": {"limits": {"maxExpansionRatio": 4, "ratioAllowanceBytes": 100_000}}}).start()
    agents.append(agent)
    agent.drop("limited", {"mous": MOUS_A, "requestId": "e2e-limits"})
    status = agent.wait_terminal("limited", timeout=300)
    assert status["state"] == "failed", status
    assert status["step"]["name"] == "casa", status["step"]
    message = status["error"]["message"]
    bound = 4 * (FIXTURE / "store" / "uid___A001_X3f01_X1a5.session_1.caltables.tgz").stat().st_size
    assert "session_1.caltables.tgz" in message and f"more than {bound} bytes" in message, status["error"]
    logs = pathlib.Path(status["workingArea"]) / "logs"
    limits = json.loads((logs / "archive-limits.json").read_text())
    assert limits["limits"]["maxExpansionRatio"] == 4 and limits["limits"]["ratioAllowanceBytes"] == 100_000
    cal = limits["archives"]["uid___A001_X3f01_X1a5.session_1.caltables.tgz"]
    assert cal["maxTotalBytes"] == bound
    flags = limits["archives"]["uid___A002_Xb1e2a0_X1.ms.flagversions.tgz"]
    assert flags["maxExpansionRatio"] == 0
    assert not list(pathlib.Path(status["workingArea"]).rglob("*.ms/table.dat")), "no measurement set was made"
    assert agent.stop() == 0
