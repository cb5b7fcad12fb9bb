"""End-to-end restores of the synthetic MOUSes with real CASA, compared with the fixture's reference MSes."""
import glob
import os
import re
import subprocess
import sys

import pytest

import casa_steps
from conftest import CASA_DIR, casa_env, compare, load, run_restore, stage

MOUS_A = "uid://A001/X3f01/X1a5"
MOUS_B = "uid://A001/X3f01/X1b0"
LEAP = "Leap second table TAI_UTC seems out-of-date"


def real_severe_lines(log_text):
    """SEVERE lines except the harmless leap-second warning and its continuation lines."""
    out, in_leap = [], False
    for line in log_text.splitlines():
        parts = line.split("\t")
        if len(parts) < 4 or parts[1] != "SEVERE":
            in_leap = False
            continue
        if LEAP in parts[3]:
            in_leap = True
            continue
        if in_leap and parts[2].endswith("+"):
            continue
        in_leap = False
        out.append(line)
    return out


def casa_log(working):
    logs = glob.glob(os.path.join(working, "casa-*.log"))
    assert len(logs) == 1, "expected one casa log in working/, found %s" % logs
    with open(logs[0]) as f:
        return f.read()


@pytest.fixture(scope="module")
def restored_a(fixture_dir, tmp_path_factory):
    root = str(tmp_path_factory.mktemp("restore-a"))
    ppr_path, working, entry = stage(fixture_dir, MOUS_A, root)
    p = run_restore(root, ppr_path, working)
    return p, working, entry


def test_restore_of_mous_a_equals_reference(restored_a, fixture_dir):
    p, working, entry = restored_a
    assert p.returncode == 0, p.stderr
    _, fx = load(fixture_dir)
    disks = [eb["asdmDiskName"] for eb in fx["execBlocks"] if eb["qa0"] == "Pass"]
    assert len(disks) == 2
    for disk in disks:
        ms = os.path.join(working, disk + ".ms")
        assert os.path.isdir(ms) and os.path.isdir(ms + ".flagversions")
        rc, summary, cp = compare(ms, os.path.join(fixture_dir, "reference", disk + ".ms"))
        assert rc == 0, cp.stdout + cp.stderr
        assert summary["identical"] and summary["matchedRows"] == summary["rows"] > 0
        assert summary["flaggedMs"] > 0  # the restored flags are really there
    assert not glob.glob(os.path.join(working, "errorexit-*"))


def test_restore_progress_and_log(restored_a):
    p, working, _ = restored_a
    lines = [l for l in p.stdout.splitlines() if l.strip()]
    assert lines and all(re.match(r"^PROGRESS \d+ \d+ \S", l) for l in lines), p.stdout
    nums = [tuple(map(int, l.split()[1:3])) for l in lines]
    # preflight, then per EB a line as each of its 4 stages starts (done = stages finished so far) and one
    # when it is done; total = 1 + 4·EBs
    assert len(lines) == 1 + 5 * 2 and all(t == 9 for _, t in nums)
    assert [d for d, _ in nums] == sorted(d for d, _ in nums) and nums[0][0] == 1
    assert nums[-1][0] == nums[-1][1]
    log = casa_log(working)
    assert "applycal" in log and "restore_mous finished" in log
    assert real_severe_lines(log) == []
    assert p.stderr.strip() == ""


def test_mous_b_fails_before_casa_with_reason(fixture_dir, tmp_path):
    root = str(tmp_path)
    ppr_path, working, _ = stage(fixture_dir, MOUS_B, root)
    p = run_restore(root, ppr_path, working)
    assert p.returncode == 1
    assert p.stderr.strip() == "restore_mous: manifest has no caltables for session_3"
    errs = glob.glob(os.path.join(working, "errorexit-*.txt"))
    assert len(errs) == 1 and re.search(r"errorexit-\d{8}T\d{6}\.txt$", errs[0])
    with open(errs[0]) as f:
        assert "manifest has no caltables for session_3" in f.read()
    severe = real_severe_lines(casa_log(working))
    assert len(severe) == 1 and "manifest has no caltables for session_3" in severe[0]
    assert not glob.glob(os.path.join(working, "*.ms")), "CASA must not have started"
    assert "PROGRESS" not in p.stdout


def test_wrong_session_numbering_is_caught(fixture_dir, tmp_path):
    """A PPR writer that forgets the QA0-Fail EB's session numbers the 2nd Pass EB session_2: must fail."""
    root = str(tmp_path)
    cat, _ = load(fixture_dir)
    entry = next(m for m in cat["mouses"] if m["mous"] == MOUS_A)
    passed = [eb["uid"] for eb in entry["execBlocks"] if eb["qa0"] == "Pass"]
    ppr_path, working, _ = stage(fixture_dir, MOUS_A, root, sessions=[[passed[0]], [passed[1]]])
    p = run_restore(root, ppr_path, working)
    assert p.returncode == 1
    assert p.stderr.strip() == "restore_mous: manifest has no caltables for session_2"
    assert glob.glob(os.path.join(working, "errorexit-*.txt"))


def test_missing_product_is_reported(fixture_dir, tmp_path):
    root = str(tmp_path)
    cat, _ = load(fixture_dir)
    entry = next(m for m in cat["mouses"] if m["mous"] == MOUS_A)
    flagfile = next(p["ngasFileId"] for p in entry["products"] if p["ngasFileId"].endswith(".flagversions.tgz"))
    ppr_path, working, _ = stage(fixture_dir, MOUS_A, root, skip_products=(flagfile,))
    p = run_restore(root, ppr_path, working)
    assert p.returncode == 1
    assert p.stderr.strip() == "restore_mous: product named in manifest is missing: %s" % flagfile


def test_dropped_gaintable_changes_corrected_data(fixture_dir, tmp_path):
    """Negative control: drop the amplitude table from the target's applycal line → CORRECTED_DATA differs."""
    root = str(tmp_path)
    ppr_path, working, entry = stage(fixture_dir, MOUS_A, root)
    products = os.path.join(os.path.dirname(working), "products")
    calapply = sorted(glob.glob(os.path.join(products, "*.ms.calapply.txt")))[0]
    with open(calapply) as f:
        lines = f.read().splitlines()
    target = next(i for i, l in enumerate(lines) if "intent='TARGET'" in l)
    new = re.sub(r", '[^']*gacal\.tbl'\]", "]", lines[target])
    new = new.replace("gainfield=['', 'J1626-2951', 'J1625-2527']", "gainfield=['', 'J1626-2951']")
    new = new.replace("interp=['linear,linear', 'linear', 'linear']", "interp=['linear,linear', 'linear']")
    new = new.replace("spwmap=[[], [], []]", "spwmap=[[], []]").replace("calwt=[False, True, True]",
                                                                         "calwt=[False, True]")
    assert new != lines[target] and "gacal" not in new
    lines[target] = new
    with open(calapply, "w") as f:
        f.write("\n".join(lines) + "\n")
    p = run_restore(root, ppr_path, working)
    assert p.returncode == 0, p.stderr
    vis = os.path.basename(calapply)[: -len(".calapply.txt")]
    rc, summary, cp = compare(os.path.join(working, vis), os.path.join(fixture_dir, "reference", vis))
    assert rc == 1, cp.stdout
    assert summary["differingCorrected"] > 0 and summary["maxAbsDiffCorrected"] > 1e-3


def test_skipping_flag_restore_changes_flags(fixture_dir, tmp_path):
    """Negative control: import + applycal without restoring Pipeline_Final → FLAG differs."""
    import calapply as ca
    cat, fx = load(fixture_dir)
    eb = next(e for e in fx["execBlocks"] if e["qa0"] == "Pass")
    disk = eb["asdmDiskName"]
    work = str(tmp_path)
    import tarfile
    with tarfile.open(os.path.join(fixture_dir, "store", eb["asdmFileId"])) as tf:
        tf.extractall(work)
    entry = next(m for m in cat["mouses"] if m["mous"] == MOUS_A)
    caltables = next(p["ngasFileId"] for p in entry["products"] if p["ngasFileId"].endswith(
        "%s.caltables.tgz" % eb["session"]))
    casa_steps.safe_extract(os.path.join(fixture_dir, "store", caltables), work)
    env = casa_env(os.path.join(work, "home"))
    vis = os.path.join(work, disk + ".ms")
    ok, reason, _ = casa_steps.run_step("importasdm", {"asdm": os.path.join(work, disk), "vis": vis}, cwd=work,
                                        env=env)
    assert ok, reason
    rc = subprocess.run([sys.executable, os.path.join(CASA_DIR, "compare_ms.py"), "--check", vis], env=env,
                        cwd=work, capture_output=True, text=True)
    assert rc.returncode == 1 and "NOT calibrated" in rc.stdout
    with open(os.path.join(fixture_dir, "store", disk + ".ms.calapply.txt")) as f:
        calls = ca.prepare_file(f.read(), vis, work)
    ok, reason, _ = casa_steps.run_step("applycal", {"vis": vis, "calls": calls}, cwd=work, env=env)
    assert ok, reason
    rc, summary, cp = compare(vis, os.path.join(fixture_dir, "reference", disk + ".ms"))
    assert rc == 1, cp.stdout
    assert summary["differingFlags"] > 0


def test_check_verdict_on_restored_ms(restored_a, fixture_dir):
    _, working, _ = restored_a
    ms = sorted(glob.glob(os.path.join(working, "*.ms")))[0]
    env = casa_env(os.path.join(working, ".check-home"))
    p = subprocess.run([sys.executable, os.path.join(CASA_DIR, "compare_ms.py"), "--check", ms], env=env,
                       cwd=working, capture_output=True, text=True)
    assert p.returncode == 0 and "calibrated" in p.stdout and "NOT" not in p.stdout
    p = subprocess.run([sys.executable, os.path.join(CASA_DIR, "compare_ms.py"), "--check", ms + ".nope"], env=env,
                       cwd=working, capture_output=True, text=True)
    assert p.returncode == 1 and "missing" in p.stdout


def test_bad_ppr_path_writes_errorexit(tmp_path):
    working = tmp_path / "working"
    working.mkdir()
    p = run_restore(str(tmp_path), str(tmp_path / "nope.xml"), str(working))
    assert p.returncode == 1 and "cannot read PPR" in p.stderr
    assert glob.glob(str(working / "errorexit-*.txt"))
