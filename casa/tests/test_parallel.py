"""One CASA process per EB (restore_mous.py --parallel N): fidelity against each EB restored alone, and a failing
EB stopping the others."""
import glob
import io
import os
import re
import tarfile
import time

import pytest

from conftest import compare, load, run_restore, stage

MOUS_A = "uid://A001/X3f01/X1a5"


def pass_ebs(fixture_dir):
    cat, _ = load(fixture_dir)
    entry = next(m for m in cat["mouses"] if m["mous"] == MOUS_A)
    return [eb["uid"] for eb in entry["execBlocks"] if eb["qa0"] == "Pass"]


def disk_of(uid):
    return uid.replace("uid://", "uid___").replace("/", "_")


@pytest.fixture(scope="module")
def restored_parallel(fixture_dir, tmp_path_factory):
    root = str(tmp_path_factory.mktemp("restore-parallel"))
    ppr_path, working, _ = stage(fixture_dir, MOUS_A, root)
    p = run_restore(root, ppr_path, working, options=("--parallel", "2"))
    assert p.returncode == 0, p.stderr
    return working, p


@pytest.mark.parametrize("index", [0, 1])
def test_each_eb_of_a_parallel_restore_is_bit_identical_to_it_restored_alone(restored_parallel, fixture_dir,
                                                                             tmp_path, index):
    working, p = restored_parallel
    # both EB processes really ran side by side: each started before the other finished
    starts = [l for l in p.stdout.splitlines() if ": importasdm (0/2 EBs done)" in l]
    assert len(starts) == 2, p.stdout
    uid = pass_ebs(fixture_dir)[index]
    disk = disk_of(uid)
    root = str(tmp_path)
    ppr_path, alone_working, _ = stage(fixture_dir, MOUS_A, root, only_ebs=[uid])
    alone = run_restore(root, ppr_path, alone_working, options=("--parallel", "1"))
    assert alone.returncode == 0, alone.stderr
    assert sorted(os.path.basename(m) for m in glob.glob(os.path.join(alone_working, "*.ms"))) == [disk + ".ms"]
    rc, summary, cp = compare(os.path.join(working, disk + ".ms"), os.path.join(alone_working, disk + ".ms"))
    assert rc == 0, cp.stdout + cp.stderr
    assert summary["identical"] and summary["matchedRows"] == summary["rows"] > 0
    assert summary["rowsOnlyInMs"] == 0 and summary["rowsOnlyInRef"] == 0
    assert summary["maxAbsDiffCorrected"] == 0 and summary["differingCorrected"] == 0
    assert summary["differingFlags"] == 0


def test_parallel_progress_names_eb_and_stage(restored_parallel, fixture_dir):
    _, p = restored_parallel
    lines = p.stdout.splitlines()
    nums = [tuple(map(int, l.split()[1:3])) for l in lines]
    assert nums[-1] == (9, 9) and all(t == 9 for _, t in nums)
    assert [d for d, _ in nums] == sorted(d for d, _ in nums)
    for uid in pass_ebs(fixture_dir):
        for stage_name in ("importasdm", "flag restore", "caltables", "applycal"):
            assert any(re.search(r"EB %s: %s \(\d/2 EBs done\)$" % (disk_of(uid), stage_name), l) for l in lines)
    assert lines[-1].endswith("(2/2 EBs done)")


def corrupt_caltables(products, session):
    """Rewrite a session's caltables tarball with every table.dat replaced by garbage (names unchanged, so the
    preflight passes; CASA fails when it opens the tables)."""
    tgz = glob.glob(os.path.join(products, "*.%s.caltables.tgz" % session))[0]
    with tarfile.open(tgz) as tf:
        members = [(m, tf.extractfile(m).read() if m.isfile() else None) for m in tf.getmembers()]
    with tarfile.open(tgz, "w:gz") as out:
        for m, data in members:
            if data is not None and os.path.basename(m.name) == "table.dat":
                data = b"garbage" * 10
                m.size = len(data)
            out.addfile(m, io.BytesIO(data) if data is not None else None)


def test_failing_eb_fails_the_restore_naming_it_and_stops_the_other(fixture_dir, tmp_path):
    root = str(tmp_path)
    uids = pass_ebs(fixture_dir)
    bad, good = disk_of(uids[0]), disk_of(uids[1])
    ppr_path, working, _ = stage(fixture_dir, MOUS_A, root)
    base = os.path.dirname(working)
    corrupt_caltables(os.path.join(base, "products"), "session_1")
    # The healthy EB's import blocks on a FIFO in place of a binary data file: it runs until it is stopped.
    bdfs = sorted(glob.glob(os.path.join(base, "rawdata", good, "ASDMBinary", "*")))
    os.remove(bdfs[0])
    os.mkfifo(bdfs[0])
    t0 = time.time()
    p = run_restore(root, ppr_path, working, options=("--parallel", "2"), timeout=300)
    assert p.returncode == 1
    reason = p.stderr.strip().splitlines()[-1]
    assert re.match(r"restore_mous: applycal failed for EB %s: \S" % bad, reason), p.stderr
    assert good not in reason
    errs = glob.glob(os.path.join(working, "errorexit-*.txt"))
    assert len(errs) == 1
    with open(errs[0]) as f:
        assert f.readline().strip() == reason[len("restore_mous: "):]
    with open(glob.glob(os.path.join(working, "casa-*.log"))[0]) as f:
        log = f.read()
    pid = int(re.search(r"EB %s: CASA process (\d+) started" % good, log).group(1))
    assert "EB %s: stopping CASA process %d" % (good, pid) in log
    assert not os.path.exists("/proc/%d" % pid), "the healthy EB's CASA process is still running"
    assert not any(": done" in l for l in p.stdout.splitlines() if good in l)
    assert time.time() - t0 < 120


def test_abort_in_an_eb_process_fails_that_eb_not_the_runner(fixture_dir, tmp_path):
    """A CASA abort() ends the EB's process only: the runner reports it, naming the EB and the signal."""
    import signal
    import subprocess
    import sys
    from conftest import CASA_DIR, casa_env
    root = str(tmp_path)
    uid = pass_ebs(fixture_dir)[1]
    disk = disk_of(uid)
    ppr_path, working, _ = stage(fixture_dir, MOUS_A, root, only_ebs=[uid])
    bdfs = sorted(glob.glob(os.path.join(os.path.dirname(working), "rawdata", disk, "ASDMBinary", "*")))
    os.remove(bdfs[0])
    os.mkfifo(bdfs[0])  # holds the EB in importasdm
    env = casa_env(os.path.join(root, "logs", "home"))
    env["SCIPIPE_ROOTDIR"] = root
    proc = subprocess.Popen([sys.executable, os.path.join(CASA_DIR, "restore_mous.py"), ppr_path], cwd=working,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().startswith("PROGRESS 1 ")
        assert "EB %s: importasdm" % disk in proc.stdout.readline()
        log = glob.glob(os.path.join(working, "casa-*.log"))[0]
        with open(log) as f:
            pid = int(re.search(r"EB %s: CASA process (\d+) started" % disk, f.read()).group(1))
        os.kill(pid, signal.SIGABRT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1
    assert err.strip().splitlines()[-1] == (
        "restore_mous: importasdm failed for EB %s: CASA process killed by signal 6 (SIGABRT)" % disk)
    assert glob.glob(os.path.join(working, "errorexit-*.txt"))
