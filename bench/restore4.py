"""Restore wall time of the four-EB MOUS (fixture MOUS C) serial vs per-EB parallel, and the scheduler overhead
per request; see restore4.sh.

Part 1, the restore program alone: `restore_mous.py --parallel 1` (the EBs one after the other) against
`--parallel 2` and `--parallel 4` (one CASA process per EB, that many at once), rounds alternating so every variant
sees the same background load, each on a freshly staged tree; every MS is compared with the reference of the EB
whose data it carries (a fast wrong restore cannot win).

Part 2, through the agent (`local` backend, release build): the same MOUS as a request, `casa.parallelExecBlocks`
1 and 2; the request's wall time (claim to `succeeded`) against the CASA process's own duration (logs/casa-run.json):
the difference is what the agent and its scheduling cost per request.

Slurm: `--slurm` starts a private single-node cluster with `scripts/services/slurm.sh` (stopped by PID at the end)
and part 2 runs a third variant on it: the `slurm` backend, two cores per job (`cpusPerTask` 2: the same per-EB
parallelism as the second local variant), so the three columns differ only in where and how CASA is started.
`--slurm-config FILE` (a JSON fragment with the `execution` section) uses an existing cluster instead
(`SLURM_CONF` in the environment).
"""
import argparse
import json
import os
import pathlib
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "casa" / "tests"))
from conftest import CASA_DIR, casa_env, compare, stage  # noqa: E402

MOUS_C = "uid://A001/X3f01/X1c0"


def restore_once(fixture_dir, parallel, label):
    root = tempfile.mkdtemp(prefix="bench-restore4-%s-" % label)
    try:
        ppr_path, working, _ = stage(fixture_dir, MOUS_C, root)
        env = casa_env(os.path.join(root, "logs", "home"))
        env["SCIPIPE_ROOTDIR"] = root
        env["SCIPIPE_LOGDIR"] = os.path.join(root, "logs")
        argv = [sys.executable, os.path.join(CASA_DIR, "restore_mous.py"), "--parallel", str(parallel), ppr_path]
        load = os.getloadavg()[0]
        t0 = time.monotonic()
        p = subprocess.run(argv, cwd=working, env=env, capture_output=True, text=True)
        wall = time.monotonic() - t0
        if p.returncode != 0:
            sys.exit("%s restore failed: %s" % (label, p.stderr.strip()[-2000:]))
        check_against_references(fixture_dir, working, label)
        return wall, load
    finally:
        shutil.rmtree(root, ignore_errors=True)


def check_against_references(fixture_dir, directory, label):
    fx = json.loads((pathlib.Path(fixture_dir) / "fixture.json").read_text())
    refs = next(m for m in fx["mouses"] if m["mous"] == MOUS_C)["referenceOf"]
    found = sorted(p for p in os.listdir(directory) if p.endswith(".ms"))
    if sorted(d + ".ms" for d in refs) != found:
        sys.exit("%s: measurement sets %s, expected %s" % (label, found, sorted(refs)))
    for ms in found:
        rc, _, cp = compare(os.path.join(directory, ms), os.path.join(fixture_dir, "reference", refs[ms[:-3]] + ".ms"))
        if rc != 0:
            sys.exit("%s: %s differs from its reference: %s" % (label, ms, cp.stdout[-2000:]))


def part1(fixture_dir, rounds, variants):
    times = {v: [] for v in variants}
    for r in range(rounds):
        for v in variants:
            wall, load = restore_once(fixture_dir, v, "p%d" % v)
            times[v].append(wall)
            print("round %d  --parallel %d  %7.2f s  (load avg %.2f before)" % (r + 1, v, wall, load), flush=True)
    base = statistics.median(times[1])
    print("\nrestore program, MOUS C (4 EBs), median of %d rounds, %d cores, load now %.2f:" % (rounds, os.cpu_count() or 0, os.getloadavg()[0]))
    for v in variants:
        m = statistics.median(times[v])
        print("  --parallel %d  %7.2f s   ratio to serial %.3f" % (v, m, m / base))
    return times


def iso(s):
    from datetime import datetime
    return datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


def slurm_cluster(run_dir):
    """Starts a single-node cluster with slurm.sh; returns its SLURM_CONF."""
    r = subprocess.run(["sh", str(REPO / "scripts/services/slurm.sh"), "start", str(run_dir), str(os.cpu_count() or 2)],
                       capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        sys.exit("slurm.sh start failed (%d): %s%s" % (r.returncode, r.stdout, r.stderr))
    return next(line.split("=", 1)[1] for line in r.stdout.splitlines() if line.startswith("SLURM_CONF="))


def part2(fixture_dir, rounds, slurm_config):
    sys.path.insert(0, str(REPO / "tests"))
    os.environ["DROPBOX_FIXTURE_DIR"] = fixture_dir
    from agentlib import RestoreAgent as Agent  # noqa: E402  (reads DROPBOX_FIXTURE_DIR at import)

    variants = [("local, 1 EB at a time", {"casa": {"parallelExecBlocks": 1}}),
                ("local, per-EB parallel (2)", {"casa": {"parallelExecBlocks": 2}})]
    if slurm_config == "start":
        variants.append(("slurm, per-EB parallel (2)",
                         {"execution": {"backend": "slurm", "slurm": {"cpusPerTask": 2, "pollSeconds": 0.5}}}))
    elif slurm_config:
        variants.append(("slurm", json.loads(pathlib.Path(slurm_config).read_text())))
    # A fresh agent (and data directory) for every request: a second request for the same MOUS in one agent would be
    # served from its restore cache without running CASA. Rounds alternate the variants, so all see the same load.
    results = {label: [] for label, _ in variants}
    for i in range(rounds):
        for label, extra in variants:
            tmp = pathlib.Path(tempfile.mkdtemp(prefix="bench-restore4-agent-"))
            agent = None
            try:
                store = tmp / "store"
                shutil.copytree(pathlib.Path(fixture_dir) / "store", store)
                cfg = {"archive": {"url": None, "localDirectory": str(store)}, "delivery": {"cleanWorkingArea": "never"}}
                for k, v in extra.items():
                    cfg.setdefault(k, {}).update(v)
                agent = Agent(tmp, None, extra=cfg).start()
                name = "r%d" % i
                load = os.getloadavg()[0]
                agent.drop(name, {"mous": MOUS_C, "requestId": "%s-%d" % (label, i)})
                s = agent.wait_terminal(name, timeout=1800)
                if s["state"] != "succeeded":
                    sys.exit("%s: %s" % (label, s.get("error")))
                run = json.loads((pathlib.Path(s["workingArea"]) / "logs/casa-run.json").read_text())
                casa = float(run["durationSeconds"])
                request = iso(s["finishedAt"]) - iso(s["startedAt"])
                results[label].append((request, casa))
                print("%-28s round %d: request %7.2f s   CASA %7.2f s   overhead %5.2f s  (load avg %.2f before)"
                      % (label, i + 1, request, casa, request - casa, load), flush=True)
                agent.stop()
            finally:
                if agent is not None:
                    if agent.proc is not None and agent.proc.poll() is None:
                        agent.stop(signal.SIGKILL)  # a failed round leaves no agent behind (by PID)
                shutil.rmtree(tmp, ignore_errors=True)
    print("\nthrough the agent, MOUS C, median of %d rounds:" % rounds)
    base = statistics.median(r[0] for r in results[variants[0][0]])
    for label, rows in results.items():
        req = statistics.median(r[0] for r in rows)
        casa = statistics.median(r[1] for r in rows)
        print("  %-28s request %7.2f s (ratio %.3f)   CASA %7.2f s   scheduler overhead per request %5.2f s (%.1f %%)"
              % (label, req, req / base, casa, req - casa, 100 * (req - casa) / casa))
    if not slurm_config:
        print("  %-28s not measured: pass --slurm-config with the slurm backend's configuration" % "slurm")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--agent-rounds", type=int, default=2)
    ap.add_argument("--skip-agent", action="store_true", help="part 1 only")
    ap.add_argument("--slurm-config", help="JSON with the `execution` section for the slurm backend")
    ap.add_argument("--slurm", action="store_true", help="start a single-node Slurm (slurm.sh) for a third variant")
    ap.add_argument("--skip-part1", action="store_true", help="part 2 only")
    a = ap.parse_args()
    fixture_dir = os.environ["DROPBOX_FIXTURE_DIR"]
    if not a.skip_part1:
        part1(fixture_dir, a.rounds, [1, 2, 4])
    if a.skip_agent:
        return
    if not a.slurm:
        part2(fixture_dir, a.agent_rounds, a.slurm_config)
        return
    run_dir = pathlib.Path(tempfile.mkdtemp(prefix="bench-restore4-slurm-"))
    try:
        os.environ["SLURM_CONF"] = slurm_cluster(run_dir)
        part2(fixture_dir, a.agent_rounds, "start")
    finally:
        subprocess.run(["sh", str(REPO / "scripts/services/slurm.sh"), "stop", str(run_dir)], capture_output=True, timeout=120)
        shutil.rmtree(run_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
