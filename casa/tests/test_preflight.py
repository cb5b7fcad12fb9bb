"""restore_mous preflight (no CASA): layout variants and errors found before any CASA process starts."""
import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

import ppr as ppr_mod
import restore_mous
from conftest import CASA_DIR, casa_env, stage

MOUS_A = "uid://A001/X3f01/X1a5"


def preflight(ppr_path, working, root):
    p = ppr_mod.parse(ppr_path)
    r = restore_mous.Restore(ppr_path, cwd=working, environ={"SCIPIPE_ROOTDIR": root})
    _, r.rawdata, r.products = ppr_mod.directories(p, cwd=working, environ={"SCIPIPE_ROOTDIR": root})
    sessions = list(dict.fromkeys(a["session"] for a in p["asdms"]))
    return r.preflight(p["asdms"], sessions, True)


def test_manifest_only_in_rawdata_is_found(fixture_dir, tmp_path):
    root = str(tmp_path)
    ppr_path, working, _ = stage(fixture_dir, MOUS_A, root)
    base = os.path.dirname(working)
    for m in glob.glob(os.path.join(base, "products", "*pipeline_manifest.xml")):
        shutil.move(m, os.path.join(base, "rawdata"))
    m, calls = preflight(ppr_path, working, root)
    assert os.path.dirname(m.path) == os.path.join(base, "rawdata")
    assert sorted(calls) == ["uid___A002_Xb1e2a0_X1.ms", "uid___A002_Xb1f3c4_X1.ms"]
    for vis, cs in calls.items():
        assert len(cs) == 3
        for kw in cs:
            assert kw["vis"] == os.path.join(working, vis)
            assert all(os.path.dirname(t) == working for t in kw["gaintable"])
            assert kw["applymode"] == "calflagstrict" and kw["parang"] is False
        # the pipeline's single flag backup per MS (applycal flagbackup=True, one callibrary call)
        assert [kw["flagbackup"] for kw in cs] == [True, False, False]
    # copytoraw copied every listed product into rawdata
    for f in m.listed_files():
        assert os.path.isfile(os.path.join(base, "rawdata", f))


def test_missing_asdm(fixture_dir, tmp_path):
    root = str(tmp_path)
    ppr_path, working, _ = stage(fixture_dir, MOUS_A, root)
    shutil.rmtree(os.path.join(os.path.dirname(working), "rawdata", "uid___A002_Xb1f3c4_X1"))
    with pytest.raises(restore_mous.RestoreError, match="ASDM missing: rawdata/uid___A002_Xb1f3c4_X1"):
        preflight(ppr_path, working, root)


def test_gaintable_not_in_caltables_tarball(fixture_dir, tmp_path):
    root = str(tmp_path)
    ppr_path, working, _ = stage(fixture_dir, MOUS_A, root)
    cal = glob.glob(os.path.join(os.path.dirname(working), "products", "uid___A002_Xb1e2a0_X1.ms.calapply.txt"))[0]
    with open(cal) as f:
        text = f.read()
    with open(cal, "w") as f:
        f.write(text.replace("solintinf.gacal.tbl", "solintinf.nosuch.tbl", 1))
    with pytest.raises(restore_mous.RestoreError, match=r"caltable .*nosuch\.tbl .* is not in "
                                                        r"uid___A001_X3f01_X1a5\.session_1\.caltables\.tgz"):
        preflight(ppr_path, working, root)


def test_sigterm_ends_in_errorexit_and_kills_casa(fixture_dir, tmp_path):
    root = str(tmp_path)
    ppr_path, working, _ = stage(fixture_dir, MOUS_A, root)
    env = casa_env(os.path.join(root, "logs", "home"))
    env["SCIPIPE_ROOTDIR"] = root
    proc = subprocess.Popen([sys.executable, os.path.join(CASA_DIR, "restore_mous.py"), ppr_path], cwd=working,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first = proc.stdout.readline()  # preflight done; the EB processes are starting
    assert first.startswith("PROGRESS 1 ")
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert err.strip() == "restore_mous: terminated by SIGTERM"
    assert glob.glob(os.path.join(working, "errorexit-*.txt"))
    deadline = time.time() + 10
    while time.time() < deadline:
        ps = subprocess.run(["pgrep", "-f", "casa_steps.py restore_eb .*%s" % os.path.basename(root)],
                            capture_output=True, text=True)
        if ps.stdout.strip() == "":
            break
        time.sleep(0.2)
    assert ps.stdout.strip() == "", "CASA step still running after SIGTERM"


def test_hifa_renorm_manifest_is_refused_before_casa(fixture_dir, tmp_path):
    root = str(tmp_path)
    ppr_path, working, _ = stage(fixture_dir, MOUS_A, root)
    products = os.path.join(os.path.dirname(working), "products")
    (m,) = glob.glob(os.path.join(products, "*pipeline_manifest.xml"))
    with open(m) as f:
        text = f.read()
    text = text.replace("</asdm>", '<hifa_renorm apply="True" threshold="1.02" spw="0,1"/></asdm>', 1)
    with open(m, "w") as f:
        f.write(text)
    with pytest.raises(restore_mous.RestoreError, match=r"asks for what the modular restore cannot reproduce: "
                                                         r"hifa_renorm for uid___A002_Xb1e2a0_X1\.ms"):
        preflight(ppr_path, working, root)


def _run_with_limits(fixture_dir, tmp_path, doc):
    root = str(tmp_path)
    ppr_path, working, _ = stage(fixture_dir, MOUS_A, root)
    limits = os.path.join(root, "archive-limits.json")
    with open(limits, "w") as f:
        json.dump(doc, f)
    env = casa_env(os.path.join(root, "logs", "home"))
    env["SCIPIPE_ROOTDIR"] = root
    proc = subprocess.run([sys.executable, os.path.join(CASA_DIR, "restore_mous.py"), "--archive-limits", limits,
                           ppr_path], cwd=working, env=env, capture_output=True, text=True, timeout=120)
    return proc, working


def test_archive_limits_from_the_agent_bound_the_caltables_before_casa(fixture_dir, tmp_path):
    # The agent's --archive-limits file bounds session_1's caltables tarball (43 KB compressed, more expanded)
    # to 1000 bytes: refused while the session caltables are unpacked, before any CASA process starts.
    cal = "uid___A001_X3f01_X1a5.session_1.caltables.tgz"
    proc, working = _run_with_limits(fixture_dir, tmp_path, {
        "limits": {}, "archives": {cal: {"maxTotalBytes": 1000, "maxEntryBytes": 1000}}})
    assert proc.returncode == 1, proc.stderr
    assert "cannot extract %s" % cal in proc.stderr
    assert "1000" in proc.stderr.strip().splitlines()[-1]
    assert "PROGRESS" not in proc.stdout
    (errorexit,) = glob.glob(os.path.join(working, "errorexit-*.txt"))
    assert cal in open(errorexit).read()


def test_an_invalid_archive_limits_file_fails_the_restore_with_its_reason(fixture_dir, tmp_path):
    proc, working = _run_with_limits(fixture_dir, tmp_path, {"limits": {"maxEntries": -5}})
    assert proc.returncode == 1
    assert "maxEntries must be a non-negative whole number" in proc.stderr
    assert "PROGRESS" not in proc.stdout
    assert glob.glob(os.path.join(working, "errorexit-*.txt"))
