"""Times restore_mous.py (old per-step program vs the current one) on the fixture's demo MOUS; see restore.sh.

Rounds alternate old and new so both see the same background load; each run gets a freshly staged tree. Both
results are checked against the fixture's reference MSes (bit-identical), so a fast wrong restore cannot win."""
import argparse
import glob
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "casa", "tests"))
from conftest import CASA_DIR, casa_env, compare, stage  # noqa: E402

MOUS_A = "uid://A001/X3f01/X1a5"


def one_run(program_dir, options, fixture_dir, label):
    root = tempfile.mkdtemp(prefix="bench-restore-%s-" % label)
    try:
        ppr_path, working, _ = stage(fixture_dir, MOUS_A, root)
        env = casa_env(os.path.join(root, "logs", "home"))
        env["SCIPIPE_ROOTDIR"] = root
        env["SCIPIPE_LOGDIR"] = os.path.join(root, "logs")
        argv = [sys.executable, os.path.join(program_dir, "restore_mous.py")] + options + [ppr_path]
        load = os.getloadavg()[0]
        t0 = time.monotonic()
        p = subprocess.run(argv, cwd=working, env=env, capture_output=True, text=True)
        wall = time.monotonic() - t0
        if p.returncode != 0:
            sys.exit("%s restore failed: %s" % (label, p.stderr.strip()))
        for ms in sorted(glob.glob(os.path.join(working, "*.ms"))):
            rc, summary, cp = compare(ms, os.path.join(fixture_dir, "reference", os.path.basename(ms)))
            if rc != 0:
                sys.exit("%s restore of %s differs from the reference: %s" % (label, ms, cp.stdout))
        return wall, load
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--old", required=True, help="directory with the old restore_mous.py and its modules")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--parallel", type=int, default=2)
    a = ap.parse_args()
    fixture_dir = os.environ["DROPBOX_FIXTURE_DIR"]
    old, new = [], []
    for r in range(a.rounds):
        for label, runs, program, options in (("old", old, a.old, []),
                                              ("new", new, CASA_DIR, ["--parallel", str(a.parallel)])):
            wall, load = one_run(program, options, fixture_dir, label)
            runs.append(wall)
            print("round %d %-3s %6.2f s  (load avg %.2f before)" % (r + 1, label, wall, load), flush=True)
    mo, mn = statistics.median(old), statistics.median(new)
    print("cores %d, load avg now %.2f %.2f %.2f" % ((os.cpu_count() or 0,) + os.getloadavg()))
    print("old (per-step processes)       median %6.2f s  min %6.2f s" % (mo, min(old)))
    print("new (one process per EB, N=%d) median %6.2f s  min %6.2f s" % (a.parallel, mn, min(new)))
    print("ratio new/old = %.3f" % (mn / mo))


if __name__ == "__main__":
    main()
