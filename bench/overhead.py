#!/usr/bin/env python3
"""Agent overhead around a real modular-CASA restore (not a test).

Runs the demo MOUS through the real agent (local archive store, warm cache after the first round) and compares,
in the same run, the wall time of the whole request with the wall time of the CASA process alone (the runner's
measured duration in logs/casa-run.json, plus the quick-look plots' CASA process of step 6, timed from the agent's log).
Overhead = (request - CASA) / CASA; target <= 1 % (issue 15). Each round also prints where the agent's own time
(request - CASA) goes, phase by phase, from the status history and the agent's log, checks every delivered file
against MANIFEST.json, and prints the agent process's CPU time (CASA runs detached and is not in it).

    bench/overhead.py [--rounds 3]

The request time is measured from the claim (status `startedAt`) to `finishedAt`: the settle time before the claim
(spool.settleSeconds, a completeness rule, 0.2 s here) is reported separately, not hidden.
"""
import argparse, json, os, pathlib, shutil, statistics, subprocess, sys, tempfile, time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from agentlib import FIXTURE, MOUS_A, RestoreAgent, require_prerequisites  # noqa: E402


def iso(s):
    from datetime import datetime
    return datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


def log_events(tmp, name):
    """(time, message, entry) of request `name`'s lines in the agent's JSON log, oldest first."""
    events = []
    for log in sorted(tmp.glob("agent-*.log")):
        for line in log.read_text().splitlines():
            if not line.startswith("{"):
                continue
            entry = json.loads(line)
            if entry.get("request.name") == name:
                events.append((iso(entry["time"]), entry.get("message"), entry))
    return events


def casa_spans(events):
    """(start, end) of each CASA process the agent ran itself ('starting CASA' -> 'CASA ended'), oldest first."""
    spans, start = [], None
    for t, message, _ in events:
        if message == "starting CASA":
            start = t
        elif message == "CASA ended" and start is not None:
            spans.append((start, t))
            start = None
    return spans


def cpu_seconds(pid):
    """utime + stime of process `pid` (its threads, not its children), seconds."""
    fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def verify_manifest(delivery):
    """Every delivered file is listed in MANIFEST.json with its size and SHA-256, and nothing else is listed."""
    import hashlib
    manifest = json.loads((delivery / "MANIFEST.json").read_text())
    listed = {f["relativePath"]: f for f in manifest["files"]}
    found = {str(p.relative_to(delivery)) for p in delivery.rglob("*") if p.is_file() and p.name != "MANIFEST.json"}
    assert found == set(listed), f"manifest and delivery differ: {sorted(found ^ set(listed))[:5]}"
    for rel, f in listed.items():
        data = (delivery / rel).read_bytes()
        assert len(data) == f["size"] and hashlib.sha256(data).hexdigest() == f["sha256"], f"{rel}: manifest is wrong"


def first(events, message, after=0.0):
    return min((t for t, m, _ in events if m == message and t >= after), default=None)


def breakdown(status, events, casa_restore):
    """Where the request's wall time outside CASA goes, from the status history and the agent's log: a list of
    (phase, seconds) whose sum is request - CASA."""
    marks = {h["step"]["name"]: iso(h["at"]) for h in status["history"] if h["state"] == "running" and h.get("step")}
    claim, end = iso(status["startedAt"]), iso(status["finishedAt"])
    s5, s6 = marks["casa"], marks["deliver"]
    plots = [(a, b) for a, b in casa_spans(events) if a >= s6]
    derive_start = plots[0][0] if plots else s6
    derive_end = plots[-1][1] if plots else s6
    delivered = first(events, "delivered", s6) or end
    submitted = first(events, "batch job submitted", s5) or s5
    noticed = first(events, "batch job ended", s5) or s6
    return [
        ("steps 1-4 (claim, fetch from the local store, staging, PPR)", s5 - claim),
        ("step 5: launch (status, limits file, job script) until submitted", submitted - s5),
        ("step 5: job script start-up before CASA's clock + noticing its end", noticed - submitted - casa_restore),
        ("step 5: success check, record, status of step 6", s6 - noticed),
        ("step 6: MS checks, derivation set-up before the plots' CASA", derive_start - s6),
        ("step 6: publishing after the plots (link, hash, fsync, README, manifest, rename)", delivered - derive_end),
        ("conclusion: delivery record, final status, index, journal", end - delivered),
    ]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory (logs, deliveries)")
    args = ap.parse_args()
    require_prerequisites()
    load_before = os.getloadavg()[0]
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="overhead-"))
    try:
        # The restore cache is off: every round must run CASA (a kept restore would serve rounds 2.. without it).
        store = tmp / "store"
        shutil.copytree(FIXTURE / "store", store)
        agent = RestoreAgent(tmp, None, extra={"archive": {"url": None, "localDirectory": str(store)}, "delivery": {"cleanWorkingArea": "never", "reuseMaxBytes": 0}}).start()
        rows = []
        for i in range(args.rounds):
            name = f"round{i}"
            cpu_before = cpu_seconds(agent.proc.pid)
            dropped = time.time()
            agent.drop(name, {"mous": MOUS_A, "requestId": name})
            s = agent.wait_terminal(name, timeout=900)
            assert s["state"] == "succeeded", s.get("error")
            agent_cpu = cpu_seconds(agent.proc.pid) - cpu_before
            verify_manifest(pathlib.Path(s["result"]["deliveryPath"]))
            run = json.loads((pathlib.Path(s["workingArea"]) / "logs/casa-run.json").read_text())
            casa_restore = float(run["durationSeconds"])
            # Step 6 runs CASA again for the quick-look plots (ProductDerivation): CASA work too, not the agent's.
            deliver = min((iso(h["at"]) for h in s["history"] if (h.get("step") or {}).get("name") == "deliver"),
                          default=float("inf"))
            events = log_events(tmp, name)
            casa_derive = sum(b - a for a, b in casa_spans(events) if a >= deliver)
            casa = casa_restore + casa_derive
            request = iso(s["finishedAt"]) - iso(s["startedAt"])
            pickup = iso(s["startedAt"]) - dropped
            phases = breakdown(s, events, casa_restore)
            rows.append((name, request, casa, pickup, casa_restore, phases, agent_cpu))
            print(f"   CASA: restore {casa_restore:.2f} s + quick-look plots {casa_derive:.2f} s", flush=True)
            marks = [(h["step"]["name"], iso(h["at"])) for h in s["history"] if h["state"] == "running" and h.get("step")]
            marks.append(("end", iso(s["finishedAt"])))
            print("   steps: " + ", ".join(f"{a} {b2 - b1:.2f} s" for (a, b1), (_, b2) in zip(marks, marks[1:])), flush=True)
            for label, seconds in phases:
                print(f"   {seconds:7.3f} s  {label}", flush=True)
            print(f"   {sum(x for _, x in phases):7.3f} s  agent's own time (sum of the above; request - CASA = "
                  f"{request - casa:.3f} s)", flush=True)
            print(f"   agent process CPU (utime+stime, its threads; CASA runs detached) {agent_cpu:.2f} s", flush=True)
            print(f"{name}: request {request:7.2f} s   CASA alone {casa:7.2f} s   overhead {100 * (request - casa) / casa:5.2f} %   (drop->claim {pickup:.2f} s)", flush=True)
        agent.stop()
        req = statistics.median(r[1] for r in rows)
        casa = statistics.median(r[2] for r in rows)
        print(f"\nload average before {load_before:.2f}, after {os.getloadavg()[0]:.2f} (2 shared CPUs)")
        cpu = statistics.median(r[6] for r in rows)
        print(f"agent process CPU per request {cpu:.2f} s = {100 * cpu / casa:.2f} % of the CASA wall time")
        print(f"\nagent's own time per phase, median over {len(rows)} rounds:")
        for i, (label, _) in enumerate(rows[0][5]):
            print(f"   {statistics.median(r[5][i][1] for r in rows):7.3f} s  {label}")
        restore = statistics.median(r[4] for r in rows)
        print(f"against the restore's CASA process alone (plots counted as the agent's): request/restore "
              f"{req / restore:.4f} -> {100 * (req - restore) / restore:.2f} %")
        print(f"\nmedian over {len(rows)} rounds: request {req:.2f} s, CASA process {casa:.2f} s, "
              f"ratio request/CASA {req / casa:.4f} -> agent overhead {100 * (req - casa) / casa:.2f} % (target <= 1 %)")
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
