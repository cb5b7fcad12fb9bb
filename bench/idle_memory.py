#!/usr/bin/env python3
"""Idle memory of `dropbox-agent run` (issue 15: VmRSS ≤ 24 MB idle, RssAnon ≤ 6 MB): two binaries started the
same way as bench/pickup.py starts the agent (temporary spool and data directory, embedded defaults, dashboard
on unless --no-dashboard), alternately, `--rounds` times each; after `--idle-seconds` of idleness each one's
/proc/PID/status (VmRSS, RssAnon, RssFile) and smaps_rollup (Pss) are read, and which shared objects are mapped.

    bench/idle_memory.py --binary .build/release/dropbox-agent --baseline /path/to/main/dropbox-agent

Prints the medians per binary and the ratio ours / baseline for each figure (lower is better).
"""
from __future__ import annotations

import argparse
import importlib.util
import pathlib
import shutil
import statistics
import tempfile
import time

HERE = pathlib.Path(__file__).resolve().parent
spec = importlib.util.spec_from_file_location("pickup", HERE / "pickup.py")
pickup = importlib.util.module_from_spec(spec)
spec.loader.exec_module(pickup)

FIELDS = ("VmRSS", "RssAnon", "RssFile", "Pss")


def libraries(pid: int) -> list[str]:
    """The shared objects mapped into `pid` (names only), for the report."""
    names = set()
    for line in pathlib.Path(f"/proc/{pid}/maps").read_text().splitlines():
        parts = line.split()
        if len(parts) >= 6 and ".so" in parts[5]:
            names.add(pathlib.Path(parts[5]).name)
    return sorted(names)


def measure(binary: pathlib.Path, directory: str | None, idle: float, dashboard: bool) -> tuple[dict, list[str]]:
    base = pathlib.Path(tempfile.mkdtemp(prefix="idle-memory.", dir=directory))
    try:
        agent = pickup.AgentSystem(base, binary, 2, dashboard=dashboard)
        try:
            time.sleep(idle)  # the measurement window itself: the agent is left idle, not waited for
            return agent.memory_kib(), libraries(agent.process.pid)
        finally:
            agent.stop()
    finally:
        shutil.rmtree(base, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", required=True, help="the agent to measure")
    parser.add_argument("--baseline", required=True, help="the agent to compare with (e.g. main's release build)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--idle-seconds", type=float, default=5)
    parser.add_argument("--dir", default=None, help="where the temporary spools go (default: $TMPDIR)")
    parser.add_argument("--no-dashboard", action="store_true")
    args = parser.parse_args()
    binaries = {"ours": pathlib.Path(args.binary).resolve(), "baseline": pathlib.Path(args.baseline).resolve()}
    samples: dict[str, list[dict]] = {"ours": [], "baseline": []}
    mapped: dict[str, list[str]] = {}
    for _ in range(args.rounds):
        for label in ("baseline", "ours"):  # alternating, so load changes hit both alike
            memory, libs = measure(binaries[label], args.dir, args.idle_seconds, not args.no_dashboard)
            samples[label].append(memory)
            mapped[label] = libs
    print(f"idle memory after {args.idle_seconds:g} s, median of {args.rounds} starts each (MB)")
    print(f"{'':10}" + "".join(f"{f:>10}" for f in FIELDS))
    medians = {}
    for label in ("ours", "baseline"):
        medians[label] = {f: statistics.median(s.get(f, 0) for s in samples[label]) / 1024 for f in FIELDS}
        print(f"{label:10}" + "".join(f"{medians[label][f]:10.1f}" for f in FIELDS))
    print(f"{'ratio':10}" + "".join(
        f"{medians['ours'][f] / medians['baseline'][f]:10.3f}" if medians['baseline'][f] else f"{'-':>10}"
        for f in FIELDS))
    print(f"VmRSS target ≤ 24 MB: ours {medians['ours']['VmRSS']:.1f} MB "
          f"({'met' if medians['ours']['VmRSS'] <= 24 else 'missed by %.1f MB' % (medians['ours']['VmRSS'] - 24)})")
    for label in ("ours", "baseline"):
        swift = [n for n in mapped[label] if n.startswith(("libswift", "libFoundation", "lib_Foundation", "libdispatch", "libBlocks", "libicu"))]
        print(f"{label} maps {len(mapped[label])} shared objects; Swift/Foundation/ICU ones: {', '.join(swift) or 'none'}")


if __name__ == "__main__":
    main()
