#!/usr/bin/env python3
"""Pickup latency and burst throughput of dropbox-agent against the inotifywait+mv baseline, in one run.

Not a test: it prints a table (and writes JSON with --json). See bench/README.md for the method.

  agent     `dropbox-agent run` on a tmpfs spool (settleSeconds 0, rescanIntervalSeconds 30); a pickup ends when
            NAME.status.json (queued or later) is renamed into place.
  baseline  inotifywait -m -e close_write -e moved_to --format %f IN | while read f; do mv "IN/$f" OUT/; done
            a pickup ends when the mv lands NAME.json in OUT.

Both ends are seen the same way: a separate watcher process (ctypes inotify, IN_MOVED_TO on the status
directory / OUT) stamps CLOCK_MONOTONIC right after read(2) returns; the producer stamps CLOCK_MONOTONIC
immediately before close(2) of each request it writes in place (open O_CREAT|O_EXCL, write, close).
"""
from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import json
import os
import pathlib
import select
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import time

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "tests"))

IN_MOVED_TO = 0x00000080
IN_Q_OVERFLOW = 0x00004000
IN_NONBLOCK = 0o4000
IN_CLOEXEC = 0o2000000
TERMINAL = {"succeeded", "failed", "rejected", "cancelled"}


def now_ns() -> int:
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC)


# ---------------------------------------------------------------------------------------------------------------
# The watcher process: `pickup.py _watch DIR SUFFIX N TIMEOUT` prints READY, then one JSON object at the end.


def watch_main(directory: str, suffix: str, expected: int, timeout: float) -> None:
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    fd = libc.inotify_init1(IN_CLOEXEC)
    if fd < 0:
        raise OSError(ctypes.get_errno(), "inotify_init1")
    if libc.inotify_add_watch(fd, directory.encode(), IN_MOVED_TO) < 0:
        raise OSError(ctypes.get_errno(), "inotify_add_watch")
    print("READY", flush=True)
    first: dict[str, int] = {}
    overflows = 0
    events = 0
    deadline = time.monotonic() + timeout
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    while len(first) < expected:
        left = deadline - time.monotonic()
        if left <= 0 or not poller.poll(int(left * 1000) + 1):
            if time.monotonic() >= deadline:
                break
            continue
        data = os.read(fd, 1 << 20)
        t = now_ns()
        offset = 0
        while offset < len(data):
            _wd, mask, _cookie, length = struct.unpack_from("iIII", data, offset)
            name = data[offset + 16: offset + 16 + length].split(b"\0", 1)[0].decode(errors="replace")
            offset += 16 + length
            events += 1
            if mask & IN_Q_OVERFLOW:
                overflows += 1
                continue
            if name.endswith(suffix) and not name.startswith("."):
                key = name[: -len(suffix)]
                if key not in first:
                    first[key] = t
    json.dump({"first": first, "overflows": overflows, "events": events}, sys.stdout)
    sys.stdout.flush()


class Watcher:
    """Starts the watcher process and waits until its watch is established."""

    def __init__(self, directory: pathlib.Path, suffix: str, expected: int, timeout: float):
        self.process = subprocess.Popen(
            [sys.executable, __file__, "_watch", str(directory), suffix, str(expected), str(timeout)],
            stdout=subprocess.PIPE, text=True)
        line = self.process.stdout.readline()
        if line.strip() != "READY":
            raise RuntimeError(f"watcher did not start: {line!r}")

    def result(self) -> dict:
        out, _ = self.process.communicate()
        return json.loads(out)


# ---------------------------------------------------------------------------------------------------------------
# Producer


def request_bytes(tag: str) -> bytes:
    return json.dumps({"mous": "uid://A001/X0/X0", "requestId": f"pickup-{tag}"}).encode()


def produce(directory: pathlib.Path, names: list[str], rate: float | None) -> dict[str, int]:
    """Writes NAME.json in place for each name (at `rate` files/s, or as fast as possible); returns the
    CLOCK_MONOTONIC stamp taken immediately before each close(2)."""
    stamps: dict[str, int] = {}
    start = now_ns()
    period = int(1e9 / rate) if rate else 0
    for i, name in enumerate(names):
        if period:
            target = start + i * period
            while True:
                left = target - now_ns()
                if left <= 0:
                    break
                if left > 2_000_000:
                    time.sleep((left - 1_000_000) / 1e9)
        fd = os.open(directory / f"{name}.json", os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        os.write(fd, request_bytes(name))
        stamps[name] = now_ns()
        os.close(fd)
    return stamps


# ---------------------------------------------------------------------------------------------------------------
# The two systems


class AgentSystem:
    label = "agent"

    def __init__(self, base: pathlib.Path, binary: pathlib.Path, max_concurrent: int, dashboard: bool = True):
        self.spool = base / "agent-spool"
        self.spool.mkdir()
        self.data = base / "agent-data"
        self.config = base / "agent-config.json"
        self.config.write_text(json.dumps({
            "dataDirectory": str(self.data),
            "spool": {"directory": str(self.spool), "settleSeconds": 0, "rescanIntervalSeconds": 30},
            "agent": {"maxConcurrentRestores": max_concurrent},
            **({"dashboard": {"enabled": False}} if not dashboard else {}),
        }))
        self.log_path = base / "agent.stderr.log"
        self.log = open(self.log_path, "wb")
        self.process = subprocess.Popen([str(binary), "run", "--config", str(self.config)],
                                        stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log, start_new_session=True)
        deadline = time.monotonic() + 30
        while b'"agent started"' not in self.log_path.read_bytes():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the agent did not start:\n{self.log_path.read_text()}")
            time.sleep(0.01)

    @property
    def drop_dir(self) -> pathlib.Path:
        return self.spool

    @property
    def arrival_dir(self) -> pathlib.Path:
        return self.spool

    arrival_suffix = ".status.json"

    def arrived(self, name: str) -> bool:
        return (self.spool / f"{name}.status.json").exists()

    def state(self, name: str) -> str | None:
        try:
            return json.loads((self.spool / f"{name}.status.json").read_bytes()).get("state")
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    def cpu_ticks(self) -> int:
        text = pathlib.Path(f"/proc/{self.process.pid}/stat").read_text()
        fields = text[text.rindex(")") + 2:].split()
        return int(fields[11]) + int(fields[12])

    def memory_kib(self) -> dict[str, int]:
        """VmRSS/VmHWM and their split: RssAnon (the agent's own heap and stacks) vs RssFile (mapped
        libraries and the binary, shared and reclaimable), plus Pss from smaps_rollup."""
        out = {}
        for line in pathlib.Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile", "Threads"):
                out[key] = int(value.split()[0])
        try:
            for line in pathlib.Path(f"/proc/{self.process.pid}/smaps_rollup").read_text().splitlines():
                key, _, value = line.partition(":")
                if key in ("Pss", "Private_Dirty"):
                    out[key] = int(value.split()[0])
        except FileNotFoundError:
            pass
        return out

    def stop(self) -> int:
        os.kill(self.process.pid, signal.SIGTERM)
        try:
            return self.process.wait(timeout=30)
        finally:
            self.log.close()


class BaselineSystem:
    label = "baseline"
    arrival_suffix = ".json"
    PIPELINE = 'inotifywait -m -e close_write -e moved_to --format %f "$1" | while read f; do mv "$1/$f" "$2/"; done'

    def __init__(self, base: pathlib.Path):
        self.inbox = base / "baseline-in"
        self.outbox = base / "baseline-out"
        self.inbox.mkdir()
        self.outbox.mkdir()
        if not shutil.which("inotifywait"):
            raise SystemExit("inotifywait is missing: apt-get install inotify-tools")
        self.process = subprocess.Popen(["bash", "-c", self.PIPELINE, "baseline", str(self.inbox), str(self.outbox)],
                                        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                        start_new_session=True)
        lines = []
        while True:  # "Setting up watches." then "Watches established."
            line = self.process.stderr.readline()
            lines.append(line)
            if b"Watches established" in line:
                break
            if not line or len(lines) > 5:
                self.stop()
                raise RuntimeError(f"inotifywait did not start: {lines!r}")

    @property
    def drop_dir(self) -> pathlib.Path:
        return self.inbox

    @property
    def arrival_dir(self) -> pathlib.Path:
        return self.outbox

    def arrived(self, name: str) -> bool:
        return (self.outbox / f"{name}.json").exists()

    def stop(self) -> None:
        # The pipeline runs in its own process group (session) that we created: end it by that id.
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        self.process.wait(timeout=10)


# ---------------------------------------------------------------------------------------------------------------
# Measurements


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def measure(system, prefix: str, n: int, rate: float | None, timeout: float) -> dict:
    names = [f"{prefix}-{i:05d}" for i in range(n)]
    watcher = Watcher(system.arrival_dir, system.arrival_suffix, n, timeout)
    stamps = produce(system.drop_dir, names, rate)
    produced_ns = now_ns()
    seen = watcher.result()
    first = seen["first"]
    latencies = [(first[k] - stamps[k]) / 1e6 for k in names if k in first]
    missing = [k for k in names if not system.arrived(k)]
    result = {
        "files": n,
        "rate": rate,
        "producerSeconds": (produced_ns - min(stamps.values())) / 1e9,
        "arrived": n - len(missing),
        "lost": len(missing),
        "watcherOverflows": seen["overflows"],
        "watcherMissed": n - len(first),
        "p50ms": percentile(latencies, 50),
        "p99ms": percentile(latencies, 99),
        "maxms": max(latencies) if latencies else float("nan"),
        "meanms": statistics.fmean(latencies) if latencies else float("nan"),
    }
    if first:
        span = (max(first.values()) - min(stamps.values())) / 1e9
        result["seconds"] = span
        result["filesPerSecond"] = len(first) / span if span > 0 else float("inf")
    result["names"] = names
    result["latencies"] = latencies
    return result


def pooled(rounds: list[dict]) -> dict:
    """All latency rounds together (percentiles over every file), plus the median of the per-round p99s."""
    latencies = [x for r in rounds for x in r["latencies"]]
    return {
        "files": sum(r["files"] for r in rounds), "rounds": len(rounds), "rate": rounds[0]["rate"],
        "arrived": sum(r["arrived"] for r in rounds), "lost": sum(r["lost"] for r in rounds),
        "watcherOverflows": sum(r["watcherOverflows"] for r in rounds),
        "p50ms": percentile(latencies, 50), "p99ms": percentile(latencies, 99), "maxms": max(latencies),
        "roundP99ms": [r["p99ms"] for r in rounds], "medianRoundP99ms": statistics.median(r["p99ms"] for r in rounds),
        "over5ms": sum(1 for x in latencies if x > 5),
    }


def wait_idle(agent: AgentSystem, timeout: float = 60) -> None:
    """Waits until the agent has used no CPU for a full second (its last writes after the terminal states)."""
    deadline = time.monotonic() + timeout
    previous = agent.cpu_ticks()
    while time.monotonic() < deadline:
        time.sleep(1)
        current = agent.cpu_ticks()
        if current == previous:
            return
        previous = current


def wait_terminal(agent: AgentSystem, names: list[str], timeout: float) -> float:
    start = time.monotonic()
    remaining = list(names)
    deadline = start + timeout
    while remaining and time.monotonic() < deadline:
        remaining = [n for n in remaining if agent.state(n) not in TERMINAL]
        if remaining:
            time.sleep(0.05)
    if remaining:
        raise RuntimeError(f"{len(remaining)} agent requests not terminal after {timeout} s")
    return time.monotonic() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", default=os.environ.get("DROPBOX_AGENT_BIN") or str(ROOT / ".build/release/dropbox-agent"))
    parser.add_argument("--dir", default="/dev/shm", help="where the spools go (tmpfs; default /dev/shm)")
    parser.add_argument("--latency-files", type=int, default=500)
    parser.add_argument("--rate", type=float, default=200, help="files/s for the latency run")
    parser.add_argument("--rounds", type=int, default=3, help="latency rounds (alternating baseline and agent)")
    parser.add_argument("--burst-files", type=int, default=10000)
    parser.add_argument("--max-concurrent", type=int, default=2)
    parser.add_argument("--idle-seconds", type=float, default=10)
    parser.add_argument("--json", help="also write the results as JSON to this file")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directories")
    parser.add_argument("--no-dashboard", action="store_true",
                        help="agent without its HTML dashboard (it rereads every status file in the spool at each refresh)")
    args = parser.parse_args()

    binary = pathlib.Path(args.binary)
    if not os.access(binary, os.X_OK):
        raise SystemExit(f"{binary} not found: swift build -c release (or pass --binary)")
    base = pathlib.Path(tempfile.mkdtemp(prefix="pickup-bench.", dir=args.dir))
    fs = subprocess.run(["stat", "-f", "-c", "%T", str(base)], capture_output=True, text=True).stdout.strip()
    print(f"bench directory {base} ({fs}); agent {binary}; {os.cpu_count()} CPUs; load {os.getloadavg()[0]:.2f}")
    agent = baseline = None
    results: dict = {"filesystem": fs, "loadBefore": os.getloadavg()}
    try:
        baseline = BaselineSystem(base)
        agent = AgentSystem(base, binary, args.max_concurrent, dashboard=not args.no_dashboard)
        results["agent.memoryAtStartKiB"] = agent.memory_kib()
        # Latency rounds alternate baseline and agent, so both see the same (shared, noisy) machine.
        rounds: dict[str, list[dict]] = {"baseline": [], "agent": []}
        for round_number in range(args.rounds):
            for label, system in (("baseline", baseline), ("agent", agent)):
                r = measure(system, f"lat{round_number}-{label}", args.latency_files, args.rate, timeout=60)
                rounds[label].append(r)
                print(f"{label:8} latency round {round_number + 1}: {r['arrived']}/{r['files']} arrived, p50 {r['p50ms']:.2f} ms, "
                      f"p99 {r['p99ms']:.2f} ms, max {r['maxms']:.2f} ms")
            wait_terminal(agent, rounds["agent"][-1]["names"], 120)
        for label in ("baseline", "agent"):
            results[f"{label}.latency"] = pooled(rounds[label])
        for label, system in (("baseline", baseline), ("agent", agent)):
            r = measure(system, f"burst-{label}", args.burst_files, None, timeout=300)
            results[f"{label}.burst"] = r
            print(f"{label:8} burst:   {r['arrived']}/{r['files']} arrived in {r.get('seconds', float('nan')):.2f} s "
                  f"({r.get('filesPerSecond', 0):.0f} files/s; producer {r['producerSeconds']:.2f} s), "
                  f"p50 {r['p50ms']:.1f} ms, p99 {r['p99ms']:.1f} ms, max {r['maxms']:.1f} ms")
        memory_after_burst = agent.memory_kib()
        results["agent.memoryAfterBurstKiB"] = memory_after_burst
        results["agent.burstAllTerminalSeconds"] = wait_terminal(agent, results["agent.burst"]["names"], 600) + results["agent.burst"].get("seconds", 0)
        print(f"agent    burst:   all {args.burst_files} terminal (failed at step 1) within "
              f"{results['agent.burstAllTerminalSeconds']:.1f} s of the first drop")
        results["agent.memoryAfterJobsKiB"] = agent.memory_kib()
        wait_idle(agent)
        ticks_per_second = os.sysconf("SC_CLK_TCK")
        before = agent.cpu_ticks()
        time.sleep(args.idle_seconds)  # the measurement window itself, not synchronisation
        idle_ticks = agent.cpu_ticks() - before
        results["agent.idleCpuSeconds"] = idle_ticks / ticks_per_second
        results["agent.idleSeconds"] = args.idle_seconds
        results["agent.memoryIdleKiB"] = agent.memory_kib()
        results["loadAfter"] = os.getloadavg()
    finally:
        if baseline:
            baseline.stop()
        if agent:
            results["agent.exitStatus"] = agent.stop()
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)

    report(results, args)
    if args.json:
        for key in list(results):
            if isinstance(results[key], dict):
                results[key].pop("names", None)
                results[key].pop("latencies", None)
        pathlib.Path(args.json).write_text(json.dumps(results, indent=2))


def report(results: dict, args) -> None:
    al, bl = results["agent.latency"], results["baseline.latency"]
    ab, bb = results["agent.burst"], results["baseline.burst"]

    def ratio(a, b):
        return a / b if b else float("inf")

    rows = [
        (f"latency p50 ms ({args.rounds}×{args.latency_files} files @ {args.rate:g}/s)", al["p50ms"], bl["p50ms"], ""),
        ("latency p99 ms (all rounds pooled)", al["p99ms"], bl["p99ms"], "≤ 5"),
        ("latency p99 ms (median of the rounds)", al["medianRoundP99ms"], bl["medianRoundP99ms"], "≤ 5"),
        ("latency max ms", al["maxms"], bl["maxms"], ""),
        ("latency: files over 5 ms", al["over5ms"], bl["over5ms"], ""),
        ("latency run: lost", al["lost"], bl["lost"], "0"),
        (f"burst {args.burst_files} files: files/s", ab.get("filesPerSecond", 0), bb.get("filesPerSecond", 0), "≥ 1.0× baseline"),
        ("burst: p50 ms", ab["p50ms"], bb["p50ms"], ""),
        ("burst: p99 ms", ab["p99ms"], bb["p99ms"], ""),
        ("burst: max ms", ab["maxms"], bb["maxms"], ""),
        ("burst: lost", ab["lost"], bb["lost"], "0"),
    ]
    print()
    print(f"{'measure':44} {'agent':>10} {'baseline':>10} {'agent/baseline':>15}  target")
    for label, a, b, target in rows:
        r = ratio(a, b) if isinstance(a, float) else ""
        fa = f"{a:10.2f}" if isinstance(a, float) else f"{a:10d}"
        fb = f"{b:10.2f}" if isinstance(b, float) else f"{b:10d}"
        fr = f"{r:15.2f}" if isinstance(r, float) else f"{'':15}"
        print(f"{label:44} {fa} {fb} {fr}  {target}")
    mem = results["agent.memoryAfterBurstKiB"]
    idle_mem = results["agent.memoryIdleKiB"]
    print(f"{'agent idle CPU over ' + format(results['agent.idleSeconds'], 'g') + ' s (utime+stime)':44} "
          f"{results['agent.idleCpuSeconds']:10.2f} s   target ≈ 0")
    print(f"{'agent VmRSS / VmHWM after the burst':44} {mem['VmRSS'] / 1024:6.1f} MB / {mem['VmHWM'] / 1024:.1f} MB")
    print(f"{'agent VmRSS / VmHWM when idle afterwards':44} {idle_mem['VmRSS'] / 1024:6.1f} MB / {idle_mem['VmHWM'] / 1024:.1f} MB")
    print(f"{'agent RssAnon when idle after the burst':44} {idle_mem['RssAnon'] / 1024:6.1f} MB   target ≤ 8 MB (issue 15)")
    print(f"{'  of which RssAnon / RssFile (after burst)':44} {mem['RssAnon'] / 1024:6.1f} MB / {mem['RssFile'] / 1024:.1f} MB"
          f"   (Pss {mem.get('Pss', 0) / 1024:.1f} MB, Private_Dirty {mem.get('Private_Dirty', 0) / 1024:.1f} MB)")
    start_mem = results.get("agent.memoryAtStartKiB")
    if start_mem:
        print(f"{'agent VmRSS / RssAnon right after start':44} {start_mem['VmRSS'] / 1024:6.1f} MB / {start_mem['RssAnon'] / 1024:.1f} MB"
              "   target ≤ 24 MB / ≤ 6 MB (issue 15)")
    print(f"watcher overflows (must be 0 for valid latencies): agent {al['watcherOverflows'] + ab['watcherOverflows']}, "
          f"baseline {bl['watcherOverflows'] + bb['watcherOverflows']}; agent exit status {results.get('agent.exitStatus')}")
    print(f"per-round latency p99 ms: agent {', '.join(f'{x:.2f}' for x in al['roundP99ms'])}; "
          f"baseline {', '.join(f'{x:.2f}' for x in bl['roundP99ms'])}")
    print(f"load average before {results['loadBefore'][0]:.2f}, after {results['loadAfter'][0]:.2f} (2 shared CPUs)")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_watch":
        watch_main(sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5]))
    else:
        main()
