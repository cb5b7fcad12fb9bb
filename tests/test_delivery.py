"""What an astronomer receives (issue 13), through the real binary with real CASA: the delivery served by a real
nginx whose workers run as www-data, the one-line download command run for real, expiry, and the mails read from
a real aiosmtpd."""
import hashlib
import json
import os
import pathlib
import re
import shutil
import stat
import subprocess
import tempfile
import urllib.error
import urllib.request

import jsonschema
import pytest

from agentlib import (  # noqa: F401 (agents is a fixture)
    agents, CASA_VENV, FIXTURE, MOUS_A, MOUS_B, SERVICES, RestoreAgent as Agent, casa_env, require_prerequisites,
    start_fault_store, start_nginx, start_smtp, wait_until as wait_for,
)

ROOT = pathlib.Path(__file__).resolve().parent.parent
STATUS_SCHEMA = json.loads((ROOT / "schemas/status.schema.json").read_text())


@pytest.fixture(scope="module", autouse=True)
def prerequisites():
    require_prerequisites()


@pytest.fixture
def served_area(tmp_path):
    """A download area that nginx serves as www-data: under a directory www-data can traverse (pytest's own temporary
    directories are 0700), with nginx's directory index switched on, so only permissions can refuse a listing."""
    parent = pathlib.Path(tempfile.mkdtemp(prefix="dropbox-served-"))
    os.chmod(parent, 0o755)
    run = tmp_path / "nginx-downloads"
    subprocess.run(["sh", str(SERVICES / "nginx-downloads.sh"), "start", str(parent / "downloads"), "restores", str(run), "www-data"],
                   check=True, capture_output=True)
    port = int((run / "port").read_text())

    class Area:
        path = parent / "downloads"
        base_url = f"http://127.0.0.1:{port}/restores"
        nginx_dir = run
        data = parent / "data"

    yield Area
    subprocess.run(["sh", str(SERVICES / "nginx-downloads.sh"), "stop", str(run)], capture_output=True)
    shutil.rmtree(parent, ignore_errors=True)


def http_get(url):
    try:
        with urllib.request.urlopen(url, timeout=20) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def nginx_worker_users(run_dir):
    """The users nginx's worker processes run as (its master is ours)."""
    master = int((run_dir / "nginx.pid").read_text())
    users = set()
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == master:
                uid = int(next(l for l in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines() if l.startswith("Uid:")).split()[1])
                users.add(uid)
        except (OSError, StopIteration, ValueError):
            continue
    return users


def mails(smtp, address):
    return [m for m in smtp.messages() if address in m["rcpt_tos"]]


def decoded(raw):
    """The message parsed (headers decoded, body as text)."""
    import email
    import email.policy
    return email.message_from_string(raw, policy=email.policy.default)


def test_delivery_served_by_nginx_as_www_data_downloaded_with_its_command_mailed_then_expires(tmp_path, served_area, agents):
    store = start_nginx(FIXTURE / "store", tmp_path / "store")
    smtp = start_smtp(tmp_path / "smtp")
    try:
        agent = Agent(tmp_path, store.url, smtp=smtp, extra={
            "dataDirectory": str(served_area.data),
            "delivery": {"directory": str(served_area.path), "baseURL": served_area.base_url, "retentionDays": 0.0005},
            "metrics": {"textfile": str(tmp_path / "metrics.prom")},
            "notifications": {"operators": ["ops@example.org"]},
        })
        agents.append(agent)
        agent.start()
        agent.drop("served", {"mous": MOUS_A, "requestId": "served-1", "email": ["pi@example.org"]})
        status = agent.wait_terminal("served")
        assert status["state"] == "succeeded", json.dumps(status, indent=1)
        jsonschema.validate(status, STATUS_SCHEMA)
        result = status["result"]
        delivered = pathlib.Path(result["deliveryPath"])
        # An unguessable name (128 random bits), the only way in.
        assert re.fullmatch(r"[0-9a-f]{32}", delivered.name), delivered.name
        assert delivered.parent == served_area.path
        assert result["url"] == f"{served_area.base_url}/{delivered.name}/"
        assert served_area.nginx_dir.exists() and 33 in nginx_worker_users(served_area.nginx_dir), "nginx workers run as www-data"

        # The area itself: reachable, not listable by others; working areas and the spool's work directory private.
        assert stat.S_IMODE(served_area.path.stat().st_mode) == 0o711
        assert stat.S_IMODE((served_area.data / "restores").stat().st_mode) == 0o700
        assert stat.S_IMODE((agent.spool / ".dropbox-agent").stat().st_mode) == 0o700
        code, body = http_get(served_area.base_url + "/")
        assert code == 403, (code, body[:200])
        assert delivered.name.encode() not in body

        # Every delivered file, served by nginx as www-data, byte for byte what the manifest says.
        manifest = json.loads((delivered / "MANIFEST.json").read_text())
        assert len(manifest["files"]) > 20
        for f in manifest["files"]:
            code, body = http_get(result["url"] + urllib.request.quote(f["relativePath"]))
            assert code == 200, (f["relativePath"], code)
            assert len(body) == f["size"] and hashlib.sha256(body).hexdigest() == f["sha256"], f["relativePath"]
        assert http_get(result["url"] + "MANIFEST.json")[0] == 200

        # The README for the astronomer: files with checksums, the command, the expiry.
        readme = (delivered / "README.txt").read_text()
        for f in manifest["files"]:
            if f["relativePath"] not in ("README.txt", "urls.txt"):
                assert f"{f['sha256']}" in readme and f["relativePath"] in readme
        assert result["downloadCommand"] in readme and result["expiresAt"] in readme
        assert str(served_area.data) not in readme and "/restores/" not in readme.replace(served_area.base_url, "")

        # The one-line download command, run as printed, fetches everything.
        target = tmp_path / "astronomer"
        target.mkdir()
        r = subprocess.run(result["downloadCommand"], shell=True, cwd=target, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr[-2000:]
        folder = next(target.iterdir())
        for f in manifest["files"]:
            got = folder / f["relativePath"]
            assert got.is_file(), f["relativePath"]
            assert hashlib.sha256(got.read_bytes()).hexdigest() == f["sha256"]

        # The mail for the astronomer: what, how big, where, one command, until when, which CASA, the request id —
        # and no server path, no configuration key, no operator hint.
        pi = decoded(wait_for(lambda: mails(smtp, "pi@example.org"), 60, "the astronomer's mail")[0]["text"])
        body = pi.get_content()
        assert pi["Auto-Submitted"] == "auto-generated" and pi["Message-ID"] and pi["Date"]
        assert MOUS_A in pi["Subject"] and "ready" in pi["Subject"]
        for needed in [MOUS_A, result["url"], result["downloadCommand"], "served-1", "6.5.4.9", "6.7.0.31",
                       str(result["sizeBytes"]), *result["measurementSets"]]:
            assert needed in body, (needed, body)
        assert re.search(r"Available until \d{4}-\d\d-\d\d \d\d:\d\d UTC", body), body
        for secret in [str(served_area.data), str(served_area.path), str(agent.spool), str(tmp_path), "/restores/" + "x",
                       "casa.versionPolicy", "installation", "Hint", "What to do", "agent.json"]:
            assert secret not in body, (secret, body)
        assert not re.search(r"(^|\s)/(tmp|var|srv|home|work)/", body), body
        # The operators: a message of their own, with the internal details.
        ops = decoded(wait_for(lambda: mails(smtp, "ops@example.org"), 60, "the operators' mail")[0]["text"])
        assert result["deliveryPath"] in ops.get_content() and "pi@example.org" not in ops["To"]
        assert [m["rcpt_tos"] for m in smtp.messages()] in ([["pi@example.org"], ["ops@example.org"]], [["ops@example.org"], ["pi@example.org"]])
        noted = wait_for(lambda: (lambda s: s if {n["state"] for n in s.get("notifications") or []} == {"sent"} else None)(agent.status("served")),
                         60, "both mails recorded as sent")
        assert sorted((n["to"], n["role"]) for n in noted["notifications"]) == [("ops@example.org", "operator"), ("pi@example.org", "requester")]
        jsonschema.validate(noted, STATUS_SCHEMA)

        # Expiry: removed by the agent, logged, counted; the status still says what was delivered, and that it expired.
        expired = wait_for(lambda: (lambda s: s if s and s["result"].get("expiredAt") else None)(agent.status("served")),
                           240, "the delivery to expire")
        jsonschema.validate(expired, STATUS_SCHEMA)
        assert expired["state"] == "succeeded"
        assert expired["result"]["measurementSets"] == result["measurementSets"]
        assert not delivered.exists()
        assert http_get(result["url"] + "MANIFEST.json")[0] == 404
        assert any('"delivery expired"' in line for line in agent.logs[-1].read_text().splitlines())
        wait_for(lambda: "dropbox_agent_deliveries_expired_total 1" in (tmp_path / "metrics.prom").read_text(), 60, "the expiry metric")
        assert agent.stop() == 0
    finally:
        store.stop()
        smtp.stop()


def test_a_failure_mail_tells_the_astronomer_what_to_do_and_nothing_internal(tmp_path, agents):
    smtp = start_smtp(tmp_path / "smtp")
    store = start_nginx(FIXTURE / "store", tmp_path / "store")
    try:
        agent = Agent(tmp_path, store.url, smtp=smtp, extra={"notifications": {"operators": ["ops@example.org"]}})
        agents.append(agent)
        agent.start()
        agent.drop("lost", {"mous": "uid://A001/X0/X1", "requestId": "lost-1", "email": ["pi@example.org"]})
        status = agent.wait_terminal("lost")
        assert status["state"] == "failed"
        pi = decoded(wait_for(lambda: mails(smtp, "pi@example.org"), 60, "the astronomer's mail")[0]["text"])
        body = pi.get_content()
        assert "failed" in pi["Subject"] and pi["Auto-Submitted"] == "auto-generated"
        assert "check its uid" in body and "The operators have been told." in body and "lost-1" in body
        assert status["error"]["message"] not in body and (status["error"].get("hint") or "§") not in body
        assert str(tmp_path) not in body and not re.search(r"(^|\s)/(tmp|var|srv|home|work)/", body), body
        ops = decoded(wait_for(lambda: mails(smtp, "ops@example.org"), 60, "the operators' mail")[0]["text"])
        assert status["error"]["code"] in ops.get_content() and status["error"]["message"] in ops.get_content()
        assert agent.stop() == 0
    finally:
        store.stop()
        smtp.stop()


def inspect(ms, *fields):
    """What a measurement set holds, read with casatools in the CASA venv (tests/inspect_ms.py). CASA's home and
    working directory (where it writes its logs) are a temporary directory: never the fixture the MS may be in."""
    with tempfile.TemporaryDirectory(prefix="inspect-ms-") as scratch:
        home = pathlib.Path(scratch) / "home"
        r = subprocess.run([str(CASA_VENV / "bin/python3"), str(ROOT / "tests/inspect_ms.py"), str(ms), *fields],
                           capture_output=True, text=True, timeout=300, env=casa_env(home), cwd=scratch)
    assert r.returncode == 0, r.stderr[-2000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


def science_spws(reference):
    """The restored MS's science spectral windows (ALMA's FULL_RES ones), after checking that it also has a
    non-science one (the fixture's channel-average spw), so that leaving it out is really exercised."""
    science = {s for s, v in reference["spws"].items() if v["name"].endswith("#FULL_RES")}
    assert science and set(reference["spws"]) - science, ("the fixture must have a non-science spw", reference["spws"])
    return science


def png_is_a_real_plot(path):
    """A PNG of a sensible size whose pixels are not all one colour (read with matplotlib in the CASA venv)."""
    data = pathlib.Path(path).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", path
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert width >= 300 and height >= 200, (path, width, height)
    code = "import sys, matplotlib.image as m; a = m.imread(sys.argv[1]); print(float(a[..., :3].std()), len({tuple(p) for p in a[::7, ::7, :3].reshape(-1, 3).tolist()}))"
    r = subprocess.run([str(CASA_VENV / "bin/python3"), "-c", code, str(path)], capture_output=True, text=True, timeout=120,
                       env={**os.environ, "MPLBACKEND": "Agg"})
    assert r.returncode == 0, r.stderr
    spread, colours = r.stdout.split()
    assert float(spread) > 0.02 and int(colours) > 5, (path, r.stdout)


def test_targets_and_contsub_delivered_checked_with_casatools_with_plots(tmp_path, agents):
    store = start_nginx(FIXTURE / "store", tmp_path / "store")
    smtp = start_smtp(tmp_path / "smtp")
    try:
        agent = Agent(tmp_path, store.url, smtp=smtp)
        agents.append(agent)
        agent.start()
        agent.drop("lines", {"mous": MOUS_A, "requestId": "lines-1", "email": ["pi@example.org"],
                             "delivery": {"content": ["targets", "contsub"]}})
        status = agent.wait_terminal("lines")
        assert status["state"] == "succeeded", json.dumps(status, indent=1) + agent.log_tail()
        jsonschema.validate(status, STATUS_SCHEMA)
        delivered = pathlib.Path(status["result"]["deliveryPath"])
        ebs = [ms[:-3] for ms in status["result"]["measurementSets"]]
        assert sorted(status["result"]["products"]) == sorted(
            [eb + ".ms.split.cal.source" for eb in ebs] + [eb + "_targets_line.ms" for eb in ebs])
        # Only what was asked for: no full MS.
        assert not any((delivered / (eb + ".ms")).exists() for eb in ebs)
        for eb in ebs:
            reference = inspect(FIXTURE / "reference" / (eb + ".ms"), "Demo_target")
            assert "CORRECTED_DATA" in reference["columns"] and set(reference["fields"]) == {"J1625-2527", "J1626-2951", "Demo_target"}
            science = science_spws(reference)
            target_rows = sum(reference["spws"][s]["fields"]["Demo_target"] for s in science)
            for product in (eb + ".ms.split.cal.source", eb + "_targets_line.ms"):
                got = inspect(delivered / product)
                # As scriptForPI leaves a split: the calibrated data in DATA, no CORRECTED_DATA.
                assert "DATA" in got["columns"] and "CORRECTED_DATA" not in got["columns"], (product, got["columns"])
                assert list(got["fields"]) == ["Demo_target"], (product, got["fields"])
                # The science spws only: the channel-average spw is left out.
                assert set(got["spws"]) == science, (product, got["spws"].keys(), science)
                assert all(got["spws"][s]["channels"] == reference["spws"][s]["channels"] for s in got["spws"])
                assert got["rows"] == target_rows, (product, got["rows"], target_rows)
            # The continuum is gone from the line data: the calibrators' 0.3 Jy target continuum leaves ~0 on average.
        plots = status["result"]["plots"]
        assert sorted(plots) == sorted([f"plots/{eb}.amp_uvdist.png" for eb in ebs] + [f"plots/{eb}.calibrators_amp_phase_time.png" for eb in ebs])
        for plot in plots:
            png_is_a_real_plot(delivered / plot)
        readme = (delivered / "README.txt").read_text()
        assert all(p in readme for p in plots) and "uvcontsub" in readme and "cont.dat" in readme
        body = wait_for(lambda: mails(smtp, "pi@example.org"), 60, "the mail")[0]["text"]
        text = decoded(body).get_content()
        assert all(status["result"]["url"] + p in text for p in plots), text
        assert all(p in text for p in status["result"]["products"])

        # The same request dropped again under another name links to this result, and mails its own recipients.
        agent.drop("lines-again", {"mous": MOUS_A, "requestId": "lines-1", "email": ["pi@example.org"],
                                   "delivery": {"content": ["targets", "contsub"]}})
        again = agent.wait_terminal("lines-again")
        assert again["state"] == "succeeded" and again["linkedTo"]["request"] == "lines", again
        second = wait_for(lambda: (lambda m: m if len(m) == 2 else None)(mails(smtp, "pi@example.org")), 60, "the linked request's mail")
        ids = {decoded(m["text"])["Message-ID"] for m in second}
        assert len(ids) == 2, "two messages, not one sent twice"
        assert status["result"]["url"] in decoded(second[1]["text"]).get_content()
        noted = wait_for(lambda: (lambda s: s if [n["state"] for n in s.get("notifications") or []] == ["sent"] else None)(
            agent.status("lines-again")), 60, "the linked request's mail in its status")
        jsonschema.validate(noted, STATUS_SCHEMA)
        assert agent.stop() == 0
    finally:
        store.stop()
        smtp.stop()


def casa_runs(agent, request):
    """The programs CASA ran for a request, from the agent's log ("starting CASA" lines and their argv)."""
    runs = []
    for line in agent.logs[-1].read_text().splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        if entry.get("message") == "starting CASA" and entry.get("request.name") == request:
            # Step 5 (any execution backend) logs the restore without an argv; the derivation logs its program.
            runs.append(pathlib.Path(entry["casa.argv"][1]).name if entry.get("casa.argv") else "restore")
    return runs


def manifest_of(status):
    files = json.loads((pathlib.Path(status["result"]["deliveryPath"]) / "MANIFEST.json").read_text())["files"]
    return {f["relativePath"]: f["sha256"] for f in files}


def test_the_same_inputs_again_reuse_the_restore_without_casa_and_only_derive(tmp_path, agents):
    store = start_nginx(FIXTURE / "store", tmp_path / "store")
    try:
        agent = Agent(tmp_path, store.url)
        agents.append(agent)
        agent.start()
        agent.drop("first", {"mous": MOUS_A, "requestId": "reuse-1"})
        first = agent.wait_terminal("first")
        assert first["state"] == "succeeded", agent.log_tail()
        assert casa_runs(agent, "first") == ["restore", "derive_products.py"]
        # `calibrated` is the full MS: every spectral window, the non-science one too, with CORRECTED_DATA.
        for ms in first["result"]["measurementSets"]:
            reference = inspect(FIXTURE / "reference" / ms)
            calibrated = inspect(pathlib.Path(first["result"]["deliveryPath"]) / ms)
            assert "CORRECTED_DATA" in calibrated["columns"]
            assert calibrated["spws"] == reference["spws"] and science_spws(reference) < set(calibrated["spws"])

        # Another request id (so not a linked re-submission): the restored MSes are reused, CASA does not run at all.
        agent.drop("second", {"mous": MOUS_A, "requestId": "reuse-2"})
        second = agent.wait_terminal("second")
        assert second["state"] == "succeeded", agent.log_tail()
        assert "linkedTo" not in second
        assert casa_runs(agent, "second") == [], casa_runs(agent, "second")
        assert any('"restore reused"' in l and '"second"' in l for l in agent.logs[-1].read_text().splitlines())
        ran = [h["step"]["number"] for h in second["history"] if h.get("step") and h["state"] == "running"]
        assert ran == [1, 6], ran
        a, b = manifest_of(first), manifest_of(second)
        for ms in first["result"]["measurementSets"]:
            same = {p: h for p, h in a.items() if p.startswith(ms + "/") or p.startswith(ms + ".flagversions/")}
            assert same and all(b.get(p) == h for p, h in same.items()), ms
        assert sorted(p for p in b if p.startswith("plots/")) == sorted(p for p in a if p.startswith("plots/"))
        assert pathlib.Path(second["result"]["deliveryPath"]) != pathlib.Path(first["result"]["deliveryPath"])

        # Averaging the full calibrated MS is refused at intake, with the JSON path.
        agent.drop("nonsense", {"mous": MOUS_A, "delivery": {"average": {"channels": 4}}})
        refused = agent.wait_terminal("nonsense")
        assert refused["state"] == "rejected" and "$.delivery.average" in refused["error"]["message"], refused["error"]

        # Only the derived content and format differ: the restore is reused, only the derivation runs. Science spws,
        # averaged, as one tgz with the plots beside it.
        agent.drop("third", {"mous": MOUS_A, "requestId": "reuse-3",
                             "delivery": {"content": "science", "format": "tgz", "average": {"time": "30s", "channels": 4}}})
        third = agent.wait_terminal("third")
        assert third["state"] == "succeeded", agent.log_tail()
        assert casa_runs(agent, "third") == ["derive_products.py"], casa_runs(agent, "third")
        delivered = pathlib.Path(third["result"]["deliveryPath"])
        archive = delivered / third["result"]["products"][0]
        assert archive.name.endswith(".tgz") and archive.read_bytes()[:2] == b"\x1f\x8b"
        assert sorted(p.name for p in (delivered / "plots").iterdir()), "plots beside the archive, linkable"
        assert third["result"]["downloadCommand"].startswith("curl ")
        out = tmp_path / "unpacked"
        out.mkdir()
        subprocess.run(["tar", "-xzf", str(archive), "-C", str(out)], check=True)
        for eb in [ms[:-3] for ms in third["result"]["measurementSets"]]:
            reference = inspect(FIXTURE / "reference" / (eb + ".ms"))
            got = inspect(out / (eb + ".ms.split.cal"))
            assert "CORRECTED_DATA" not in got["columns"] and set(got["fields"]) == set(reference["fields"])
            # Science spws only (the channel-average spw left out), all fields, 4 channels averaged into one.
            science = science_spws(reference)
            assert {s: v["channels"] for s, v in got["spws"].items()} == {s: reference["spws"][s]["channels"] // 4 for s in science}
            assert 0 < got["rows"] <= sum(reference["spws"][s]["rows"] for s in science)
            assert not (out / (eb + ".ms")).exists()
        assert agent.stop() == 0

        # One slot, taken by an unrelated restore that hangs on a stalled archive: a reusable request does not wait.
        faults = start_fault_store(FIXTURE / "store", tmp_path / "faults")
        try:
            config = json.loads(agent.config.read_text())
            config["archive"]["url"] = faults.url + "/stall"
            config["archive"]["maxAttempts"] = 1
            agent.config.write_text(json.dumps(config))
            agent.start()
            agent.drop("blocker", {"mous": MOUS_B, "requestId": "blocker-1"})
            agent.wait(("blocker"), lambda s: s["state"] == "running", 60, "the unrelated restore to hold the slot")
            agent.drop("fourth", {"mous": MOUS_A, "requestId": "reuse-4"})
            fourth = agent.wait_terminal("fourth", timeout=240)
            assert fourth["state"] == "succeeded", agent.log_tail()
            blocker = agent.status("blocker")
            assert blocker["state"] == "running" and not [h for h in blocker["history"] if h["state"] == "queued" and h["at"] > blocker["startedAt"]], \
                "delivered while the unrelated restore still held the only slot"
            assert any('"started without waiting for a slot"' in l and '"fourth"' in l for l in agent.logs[-1].read_text().splitlines())
            assert casa_runs(agent, "fourth") == []
            (agent.spool / "blocker.cancel").write_text("")
            agent.wait_terminal("blocker", timeout=120)
            assert agent.stop() == 0
        finally:
            faults.stop()
    finally:
        store.stop()
