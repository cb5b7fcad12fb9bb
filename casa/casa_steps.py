#!/usr/bin/env python3
"""CASA operations shared by the fixture generator and the restore program.

Every CASA operation runs in a child interpreter (``python3 casa_steps.py STEP JSON``), never in the caller,
because some CASA C++ errors call abort() and would otherwise take the caller down. ``run_step`` is the caller
side for one step: it spawns it with the current interpreter and returns (ok, reason, result).

The restore program runs one child per execution block (step ``restore_eb``: importasdm, flag restore, caltables,
applycal in one interpreter, the pipeline's order), not one per operation: CASA's results depend on what the
process did before (an EB restored step by step differed from the same EB restored in one process by
|ΔCORRECTED_DATA| 2.7e-7), so the unit that must be reproducible is "one EB in one fresh process". A child
announces each stage with a ``CASA_STEP_STAGE <stage>`` line and ends with one ``CASA_STEP_RESULT {json}`` line.

The importasdm parameters are the pipeline's (hifa_importdata / hifa_restoredata); they must be identical
in calibration and restore because saved flag versions are row-aligned.
"""
import json
import os
import shutil
import subprocess
import sys
import tarfile

HERE = os.path.dirname(os.path.abspath(__file__))

# Parameters of the pipeline's ASDM import (see casa-offline.md).
PIPELINE_IMPORTASDM = {
    "ocorr_mode": "ca",
    "bdfflags": True,
    "with_pointing_correction": True,
    "process_caldevice": False,
    "asis": "Antenna Station Receiver Source CalAtmosphere CalWVR CorrelatorMode SBSummary",
    "lazy": False,
}

FINAL_FLAG_VERSION = "Pipeline_Final"
FINAL_FLAG_COMMENT = "Final pipeline flags"

STEP_RESULT_PREFIX = "CASA_STEP_RESULT "
STEP_STAGE_PREFIX = "CASA_STEP_STAGE "

# The stages of one EB's restore (step restore_eb), in the pipeline's order.
EB_STAGES = ("importasdm", "flag restore", "caltables", "applycal")


class StepError(Exception):
    """A step failed for a reason that can be stated in one line."""


# --------------------------------------------------------------------------------------------- caller side

def run_step(step, args, cwd=None, env=None, python=None, timeout=None):
    """Run one CASA step in a subprocess. Returns (ok: bool, reason: str, result: dict|None)."""
    argv = [python or sys.executable, os.path.join(HERE, "casa_steps.py"), step, json.dumps(args)]
    p = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    result = None
    reason = ""
    for line in p.stdout.splitlines():
        if line.startswith(STEP_RESULT_PREFIX):
            result = json.loads(line[len(STEP_RESULT_PREFIX):])
    if result is not None and not result.get("ok"):
        reason = result.get("reason") or "unknown error"
    elif p.returncode != 0:
        tail = [l for l in p.stderr.strip().splitlines() if l.strip()][-1:]
        if p.returncode < 0:
            reason = "CASA step %s killed by signal %d" % (step, -p.returncode)
        else:
            reason = "CASA step %s exited with status %d%s" % (step, p.returncode,
                                                                 (": " + tail[0]) if tail else "")
    elif result is None:
        reason = "CASA step %s produced no result" % step
    ok = p.returncode == 0 and result is not None and result.get("ok", False)
    return ok, reason, result


# --------------------------------------------------------------------------------------------- CASA side

def _casalog_to(logfile):
    """Send this process's CASA log to logfile (one shared log per run), drop the auto-created one."""
    from casatasks import casalog
    auto = casalog.logfile()
    if logfile:
        logfile = os.path.abspath(logfile)
        if auto and os.path.abspath(auto) != logfile:
            casalog.setlogfile(logfile)
            try:
                os.remove(auto)
            except OSError:
                pass
    return casalog


# The extraction rules shared with the agent's SafeArchive (Swift, Sources/Delivery/Archive): same limits, same
# defaults (ArchiveLimits, configuration archive.limits.*), same table of hostile archives in both test suites
# (tests/data/malicious-archives.json). This side is stricter on links: it refuses every link.
DEFAULT_LIMITS = {
    "maxEntries": 100000,
    "maxTotalBytes": 64 << 30,
    "maxEntryBytes": 64 << 30,
    "maxExpansionRatio": 200,
    "ratioAllowanceBytes": 64 << 20,
}


LIMIT_KEYS = tuple(DEFAULT_LIMITS)


def check_limits(limits, where="archive limits"):
    """`limits` as the agent passes them (a subset of DEFAULT_LIMITS' keys, each a non-negative number, the
    counts and byte sizes whole numbers): returned as a dict; StepError naming `where` and the key otherwise."""
    if limits is None:
        return {}
    if not isinstance(limits, dict):
        raise StepError("%s: expected an object of limits, got %s" % (where, type(limits).__name__))
    for key, value in limits.items():
        if key not in DEFAULT_LIMITS:
            raise StepError("%s: unknown limit %r (known: %s)" % (where, key, ", ".join(LIMIT_KEYS)))
        whole = key != "maxExpansionRatio"
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or (
                whole and value != int(value)):
            raise StepError("%s: %s must be a non-negative %s, got %r"
                            % (where, key, "whole number" if whole else "number", value))
    return dict(limits)


def load_archive_limits(path):
    """The agent's archive-limits file (restore_mous.py --archive-limits FILE, written by the agent's CASA step):

        {"limits": {<the configured archive.limits>},
         "archives": {"<file name>": {<those limits with the bounds derived from the file's catalogued size>}}}

    Returns a function: archive path -> the limits for it (its own entry, else the configured ones, else
    DEFAULT_LIMITS). StepError for a file that cannot be read or is not that shape."""
    try:
        with open(path) as f:
            doc = json.load(f)
    except (OSError, ValueError) as e:
        raise StepError("cannot read the archive limits %s: %s" % (path, e))
    if not isinstance(doc, dict) or not isinstance(doc.get("archives", {}), dict):
        raise StepError("archive limits %s: expected {\"limits\": {...}, \"archives\": {...}}" % path)
    unknown = set(doc) - {"limits", "archives"}
    if unknown:
        raise StepError("archive limits %s: unknown key(s) %s" % (path, ", ".join(sorted(unknown))))
    base = dict(DEFAULT_LIMITS, **check_limits(doc.get("limits"), "archive limits %s" % path))
    archives = {}
    for name, limits in doc.get("archives", {}).items():
        if not isinstance(name, str) or not name or "/" in name:
            raise StepError("archive limits %s: %r is not a file name" % (path, name))
        archives[name] = dict(base, **check_limits(limits, "archive limits %s, %s" % (path, name)))

    def limits_for(archive):
        return dict(archives.get(os.path.basename(archive), base))

    return limits_for


def _max_expanded(limits, compressed):
    ratio = limits["maxExpansionRatio"]
    if ratio <= 0:
        return limits["maxTotalBytes"]
    return max(int(compressed * ratio), limits["ratioAllowanceBytes"])


def safe_extract(tgz, dest, members_filter=None, limits=None):
    """Extract a tarball into dest, all or nothing: every member is checked before anything is written, also the
    ones the filter skips. Refused (StepError): absolute paths, '..', symbolic links, anything that is not a
    regular file, a directory or an allowed hard link (devices, FIFOs), set-user-ID or set-group-ID files, a
    member whose directory in dest is (or goes through) a symbolic link, and the limits (`limits` overrides
    DEFAULT_LIMITS: entries, total and per-file size, expansion ratio against the compressed size; checked on each
    header before reading on). A hard link is allowed only to a regular file an earlier member extracted (no set-id
    bits, no data of its own) and counts against the size limits as a copy: the agent's SafeArchive applies the
    same rule (tests/data/malicious-archives.json tests both). It is made with link(2), or written as a copy when
    the filter skipped its file. Files are written with their mode minus set-id bits, never following a link, not
    chowned."""
    lim = dict(DEFAULT_LIMITS, **check_limits(limits, "limits for %s" % os.path.basename(tgz)))
    dest = os.path.abspath(dest)
    real_dest = os.path.realpath(dest)
    label = os.path.basename(tgz)
    max_expanded = min(_max_expanded(lim, os.path.getsize(tgz)), lim["maxTotalBytes"])
    selected = []
    regular = {}  # normalised member path -> the regular file member there now (hard links: their file's member)
    with tarfile.open(tgz, "r:*") as tf:
        count = total = 0
        for m in tf:
            count += 1
            if count > lim["maxEntries"]:
                raise StepError("%s has more than %d entries" % (label, lim["maxEntries"]))
            parts = [p for p in m.name.split("/") if p not in ("", ".")]
            if not m.name or m.name.startswith("/") or ".." in parts or not parts or "\0" in m.name:
                raise StepError("unsafe path in %s: %s" % (label, m.name))
            target = os.path.abspath(os.path.join(dest, *parts))
            if not (target == dest or target.startswith(dest + os.sep)):
                raise StepError("unsafe path in %s: %s" % (label, m.name))
            if m.issym():
                raise StepError("link in %s: %s" % (label, m.name))
            source = _hard_link_source(m, regular, label) if m.islnk() else None
            if not (m.isreg() or m.isdir() or source):
                raise StepError("not a regular file or directory in %s: %s" % (label, m.name))
            if not m.isdir() and m.mode & 0o6000:
                raise StepError("set-user-ID or set-group-ID file in %s: %s" % (label, m.name))
            if m.size > lim["maxEntryBytes"]:
                raise StepError("%s: %s is %d bytes, above the %d-byte limit"
                                % (label, m.name, m.size, lim["maxEntryBytes"]))
            key = "/".join(parts)
            if m.isdir():
                regular.pop(key, None)  # a directory replaces a file of that name
            else:
                regular[key] = source or m
            # A hard link costs no space here, but counts as a copy of its file (it may be written as one).
            total += max(0, m.size) + (source.size if source else 0)
            if total > lim["maxTotalBytes"]:
                raise StepError("%s expands to more than %d bytes" % (label, lim["maxTotalBytes"]))
            if total > max_expanded:
                raise StepError("%s (%d bytes) declares %d bytes of content, more than %s times its size: refusing "
                                "it as a decompression bomb" % (label, os.path.getsize(tgz), total,
                                                               lim["maxExpansionRatio"]))
            parent = os.path.realpath(os.path.dirname(target))
            if not (parent == real_dest or parent.startswith(real_dest + os.sep)):
                raise StepError("%s: %s would be written through a symbolic link" % (label, m.name))
            if members_filter and not members_filter(m.name):
                continue
            selected.append((m, target, source))
        names = []
        written = {}  # id of a regular file member -> where this extraction wrote it (for hard links to it)
        for m, target, source in selected:
            if m.isdir():
                os.makedirs(target, mode=0o755, exist_ok=True)
                names.append(m.name)
                continue
            os.makedirs(os.path.dirname(target), mode=0o755, exist_ok=True)
            if os.path.islink(target) or os.path.isdir(target):
                raise StepError("%s: %s already exists as a link or directory" % (label, m.name))
            if os.path.lexists(target):
                os.unlink(target)  # never write into an earlier file's inode (a hard link may share it)
            file_member = source or m
            if source and os.path.isfile(written.get(id(source), "")):
                os.link(written[id(source)], target, follow_symlinks=False)
            else:
                _write_member(tf, file_member, target, label)
                written.setdefault(id(file_member), target)
            names.append(m.name)
        for m, target, _ in selected:
            if m.isdir():
                os.chmod(target, (m.mode & 0o777) | 0o700)
    return names


def _hard_link_source(m, regular, label):
    """The regular file member a hard link member `m` may link to (see safe_extract), else StepError."""
    link_parts = [p for p in m.linkname.split("/") if p not in ("", ".")]
    if not m.linkname or m.linkname.startswith("/") or ".." in link_parts or not link_parts or "\0" in m.linkname:
        raise StepError("unsafe hard link in %s: %s -> %s" % (label, m.name, m.linkname))
    source = regular.get("/".join(link_parts))
    if source is None:
        raise StepError("hard link in %s: %s -> %s, which is not a regular file an earlier member extracted"
                        % (label, m.name, m.linkname))
    if source.mode & 0o6000:
        raise StepError("hard link in %s: %s -> %s, a set-user-ID or set-group-ID file" % (label, m.name, m.linkname))
    if m.size:
        raise StepError("hard link in %s: %s -> %s carrying %d bytes of data" % (label, m.name, m.linkname, m.size))
    return source


def _write_member(tf, m, target, label):
    """Writes regular file member m's data to target (a new file, never following a link), then mode and time."""
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    written = 0
    with os.fdopen(fd, "wb") as out, tf.extractfile(m) as data:
        while True:
            block = data.read(1 << 20)
            if not block:
                break
            written += len(block)
            if written > m.size:
                raise StepError("%s: %s is longer than its header says" % (label, m.name))
            out.write(block)
        os.fchmod(out.fileno(), m.mode & 0o777)
    os.utime(target, (m.mtime, m.mtime), follow_symlinks=False)


def step_importasdm(a):
    import casatasks
    vis = a["vis"]
    if os.path.exists(vis):
        shutil.rmtree(vis)
    if os.path.exists(vis + ".flagversions"):
        shutil.rmtree(vis + ".flagversions")
    if not os.path.isdir(a["asdm"]):
        raise StepError("ASDM directory missing: %s" % a["asdm"])
    casatasks.importasdm(asdm=a["asdm"], vis=vis, **PIPELINE_IMPORTASDM)
    if not os.path.isdir(vis):
        raise StepError("importasdm wrote no MS for %s" % os.path.basename(a["asdm"]))
    return {"vis": vis}


def step_restore_flags(a):
    """hifa_restoredata's _do_restore_flags: drop filler flagversions, untar the final ones, restore."""
    import casatasks
    vis = a["vis"]
    version = a.get("versionname", FINAL_FLAG_VERSION)
    fv = vis + ".flagversions"
    if os.path.exists(fv):
        shutil.rmtree(fv)
    safe_extract(a["tgz"], os.path.dirname(os.path.abspath(vis)), limits=a.get("limits"))
    if not os.path.isfile(os.path.join(fv, "flags." + version)) and not os.path.isdir(
            os.path.join(fv, "flags." + version)):
        raise StepError("%s has no flag version %s" % (os.path.basename(a["tgz"]), version))
    casatasks.flagmanager(vis=vis, mode="restore", versionname=version)
    return {"restored": version}


def step_applycal(a):
    """Run a list of applycal keyword dicts (already translated and re-rooted) on one MS."""
    import casatasks
    vis = a["vis"]
    for kw in a["calls"]:
        kw = dict(kw)
        kw["vis"] = vis
        for t in kw.get("gaintable", []):
            if not os.path.isdir(t):
                raise StepError("gaintable missing: %s" % os.path.basename(t))
        kw["applymode"] = "calflagstrict"
        # parang and flagbackup come prepared (calapply.prepare: the pipeline's values); absent → CASA's safe ones.
        kw["parang"] = bool(kw.get("parang", False))
        kw["flagbackup"] = bool(kw.get("flagbackup", False))
        casatasks.applycal(**kw)
    import casatools
    tb = casatools.table()
    tb.open(vis)
    cols = tb.colnames()
    tb.close()
    if "CORRECTED_DATA" not in cols:
        raise StepError("%s has no CORRECTED_DATA after applycal" % os.path.basename(vis))
    return {"applied": len(a["calls"])}


def step_restore_eb(a):
    """One EB's whole restore in this process, in the pipeline's order (hifa_restoredata): importasdm, flag
    restore, the EB's members of its session's caltables tarball, applycal replay.

    a: asdm, vis, flags_tgz, versionname, caltables_tgz, calls (as for step_applycal); flags_limits and
    caltables_limits (optional): safe_extract's limits for the two tarballs (restore_mous.py --archive-limits).
    Prints a CASA_STEP_STAGE line as each stage starts (the caller names the failing stage from the last one)."""
    vis = a["vis"]
    working = os.path.dirname(os.path.abspath(vis))
    out = {}

    def stage(name):
        print(STEP_STAGE_PREFIX + name, flush=True)

    stage("importasdm")
    step_importasdm({"asdm": a["asdm"], "vis": vis})
    stage("flag restore")
    out.update(step_restore_flags({"vis": vis, "tgz": a["flags_tgz"], "limits": a.get("flags_limits"),
                                   "versionname": a.get("versionname", FINAL_FLAG_VERSION)}))
    stage("caltables")
    prefix = os.path.basename(vis)
    names = safe_extract(a["caltables_tgz"], working, members_filter=lambda n: n.startswith(prefix),
                         limits=a.get("caltables_limits"))
    out["caltables"] = len({n.split("/")[0] for n in names})
    stage("applycal")
    out.update(step_applycal({"vis": vis, "calls": a["calls"]}))
    return out


def step_check_ms(a):
    import casatools
    tb = casatools.table()
    vis = a["vis"]
    if not os.path.isdir(vis):
        raise StepError("MS missing: %s" % vis)
    tb.open(vis)
    try:
        cols = tb.colnames()
        nrows = tb.nrows()
    finally:
        tb.close()
    return {"nrows": nrows, "corrected": "CORRECTED_DATA" in cols}


STEPS = {
    "importasdm": step_importasdm,
    "restore_flags": step_restore_flags,
    "applycal": step_applycal,
    "restore_eb": step_restore_eb,
    "check_ms": step_check_ms,
}


def step_main(argv, steps):
    """Entry point of a step subprocess: STEP JSON → one result line on stdout."""
    if len(argv) != 2 or argv[0] not in steps:
        print("usage: STEP JSON; steps: %s" % ", ".join(sorted(steps)), file=sys.stderr)
        return 2
    args = json.loads(argv[1])
    try:
        casalog = _casalog_to(args.get("logfile"))
        casalog.origin("casa_steps." + argv[0])
    except Exception:  # logging is best effort; the step decides success
        casalog = None
    try:
        out = steps[argv[0]](args) or {}
        print(STEP_RESULT_PREFIX + json.dumps(dict(out, ok=True)), flush=True)
        return 0
    except Exception as e:  # report one line, log SEVERE
        reason = str(e) if isinstance(e, StepError) else "%s: %s" % (type(e).__name__, e)
        reason = " ".join(reason.split())
        if casalog is not None:
            try:
                casalog.post("%s failed: %s" % (argv[0], reason), "SEVERE")
            except Exception:
                pass
        import traceback
        traceback.print_exc()
        print(STEP_RESULT_PREFIX + json.dumps({"ok": False, "reason": reason}), flush=True)
        return 1


if __name__ == "__main__":
    sys.exit(step_main(sys.argv[1:], STEPS))
