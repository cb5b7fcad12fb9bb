"""Shared test fixtures: the synthetic MOUS (generated once per session) and restore staging helpers.

Run with the CASA venv's python:  VENV/bin/python3 -m pytest casa/tests
Set DROPBOX_FIXTURE_DIR to reuse (or create) a fixture directory instead of a fresh temporary one.
"""
import json
import os
import shutil
import subprocess
import sys
import tarfile

import pytest

TESTS = os.path.dirname(os.path.abspath(__file__))
CASA_DIR = os.path.dirname(TESTS)
sys.path.insert(0, CASA_DIR)
sys.path.insert(0, TESTS)

import casaenv  # noqa: E402
from pprgen import build_ppr, sanitize  # noqa: E402


def require_casa():
    """CASA must work offline in subprocesses of this interpreter (a missing CASA is a failure, not a skip)."""
    result = casaenv.check(sys.prefix)
    if not result["ok"]:
        pytest.fail("CASA is not usable from %s: %s. Run the tests with the CASA venv's python: "
                    "python3 casa/casaenv.py install --venv DIR --with-tests && DIR/bin/python3 -m pytest casa/tests"
                    % (sys.executable, "; ".join(result["problems"])))


@pytest.fixture(scope="session")
def fixture_dir(tmp_path_factory):
    require_casa()
    d = os.environ.get("DROPBOX_FIXTURE_DIR")
    if d:
        d = os.path.abspath(d)
        if os.path.exists(os.path.join(d, "fixture.json")):
            return d
    else:
        d = str(tmp_path_factory.mktemp("fixture"))
    p = subprocess.run([sys.executable, os.path.join(CASA_DIR, "make_fixture.py"), d], capture_output=True,
                       text=True, env=casa_env(os.path.join(d, ".home")))
    assert p.returncode == 0, "make_fixture failed:\n%s\n%s" % (p.stdout, p.stderr[-4000:])
    return d


def casa_env(home):
    os.makedirs(home, exist_ok=True)
    env = casaenv.casa_env(sys.prefix, home)
    if os.environ.get("CASASITECONFIG"):
        env["CASASITECONFIG"] = os.environ["CASASITECONFIG"]
    return env


def load(fixture_dir):
    with open(os.path.join(fixture_dir, "catalog.json")) as f:
        cat = json.load(f)
    with open(os.path.join(fixture_dir, "fixture.json")) as f:
        fx = json.load(f)
    return cat, fx


def ppr_sessions(mous_entry):
    """SESSION_n lists per INTERFACES.md §1: sessions ordered by endTime, every QA0 counts, Pass EBs listed, spelled
    as the agent's PPR writer (and the pipeline's own PPRs) spell them: sanitised, uid___A002_X…_X…."""
    sessions = sorted(mous_entry["sessions"], key=lambda s: (s["endTime"] or "", s["startTime"] or "", s["id"]))
    out = []
    for s in sessions:
        out.append([sanitize(eb["uid"]) for eb in mous_entry["execBlocks"]
                    if eb["sessionId"] == s["id"] and eb["qa0"] == "Pass"])
    return out


def stage(fixture_dir, mous, root, sessions=None, skip_products=(), ppr_name="PPR_uid___A001_X3f01_X1a8.xml",
          only_ebs=None):
    """Lay out <root>/<rel>/{rawdata,working,products} for one MOUS of the fixture and write the PPR.
    only_ebs: restrict the PPR (ASDMs and SESSION_n lists, numbering kept) to these EB uids.
    Returns (ppr_path, working_dir, entry)."""
    cat, _ = load(fixture_dir)
    entry = next(m for m in cat["mouses"] if m["mous"] == mous)
    rel = "%s_2024_09_02T00_00_00.000/SOUS_%s/GOUS_%s/MOUS_%s" % (
        entry["project"], sanitize(entry["sous"]), sanitize(entry["gous"]), sanitize(mous))
    base = os.path.join(root, rel)
    for d in ("rawdata", "working", "products"):
        os.makedirs(os.path.join(base, d), exist_ok=True)
    store = os.path.join(fixture_dir, "store")
    asdms = []
    for eb in entry["execBlocks"]:
        if eb["qa0"] != "Pass" or (only_ebs is not None and eb["uid"] not in only_ebs):
            continue
        disk = sanitize(eb["uid"])
        with tarfile.open(os.path.join(store, eb["asdm"]["ngasFileId"])) as tf:
            tf.extractall(os.path.join(base, "rawdata"))
        asdms.append((eb["uid"], disk))
    for p in entry["products"]:
        if p["fileClass"] in ("calibration", "script") and p["ngasFileId"] not in skip_products:
            shutil.copy(os.path.join(store, p["ngasFileId"]), os.path.join(base, "products"))
    if sessions is None:
        sessions = ppr_sessions(entry)
        if only_ebs is not None:
            keep = {sanitize(uid) for uid in only_ebs}
            sessions = [[uid for uid in s if uid in keep] for s in sessions]
    text = build_ppr(mous, rel, asdms, sessions, part_id=entry["obsUnitSetPartId"],
                     sb_uid=entry["schedBlock"]["uid"], sb_status=entry["schedBlock"]["statusUid"])
    ppr_path = os.path.join(base, "working", ppr_name)
    with open(ppr_path, "w") as f:
        f.write(text)
    return ppr_path, os.path.join(base, "working"), entry


def run_restore(root, ppr_path, working, timeout=600, options=()):
    logs = os.path.join(root, "logs")
    env = casa_env(os.path.join(logs, "home"))
    env["SCIPIPE_ROOTDIR"] = root
    env["SCIPIPE_LOGDIR"] = logs
    return subprocess.run([sys.executable, os.path.join(CASA_DIR, "restore_mous.py")] + list(options) + [ppr_path],
                          cwd=working, env=env, capture_output=True, text=True, timeout=timeout)


def compare(ms, ref):
    env = casa_env(os.path.join(os.path.dirname(ms), ".cmp-home"))
    p = subprocess.run([sys.executable, os.path.join(CASA_DIR, "compare_ms.py"), ms, ref], capture_output=True,
                       text=True, env=env, cwd=os.path.dirname(ms))
    summary = json.loads(p.stdout) if p.stdout.strip().startswith("{") else None
    return p.returncode, summary, p
