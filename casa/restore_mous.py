#!/usr/bin/env python3
"""Restore the calibrated MSes of one ALMA MOUS from a restore PPR, the way hifa_restoredata does, with plain
CASA tasks (modular CASA; the ALMA pipeline is not needed).

Usage (CASA venv python; cwd = <root>/<RelativePath>/working; env per casa/casaenv.py):
    restore_mous.py [--parallel N] [--archive-limits FILE] /abs/path/PPR.xml

Contract (INTERFACES.md §3):
- PPR parsed as executeppr does (ppr.py); rawdata = $SCIPIPE_ROOTDIR/<RelativePath>/rawdata (../rawdata if unset).
- copytoraw=True semantics: products/*pipeline_manifest.xml and the files the manifest lists are copied from
  ../products into rawdata/; the manifest is chosen like hifa_restoredata (manifest.py).
- Everything the manifest and PPR must provide is checked before any CASA process starts.
- One CASA process per EB (casa_steps.py restore_eb), at most N at a time (--parallel, default cores/2, at least
  1): importasdm (pipeline parameters), filler flagversions removed, finalflags untarred, flagmanager restore
  Pipeline_Final, the EB's members of its session's caltables tarball untarred (members named after the session
  are untarred once, before the EB processes start), every applycal( line replayed (calapply.py),
  applymode='calflagstrict', flagbackup=False.
- Every tarball is unpacked by casa_steps.safe_extract with the limits of --archive-limits FILE (JSON written by
  the agent: its configured archive.limits and, per file, the bounds derived from the file's catalogued size;
  casa_steps.load_archive_limits), or casa_steps.DEFAULT_LIMITS without it.
- Progress: 'PROGRESS <done> <total> <text>' on stdout; total = 1 + 4·EBs (preflight, then four stages per EB),
  text 'EB <AsdmDiskName>: <stage> (<k>/<n> EBs done)'.
- Failure: errorexit-<UTC YYYYmmddTHHMMSS>.txt in working/, a SEVERE line in the casa log, a one-line
  reason on stderr, exit status 1 (2 for a usage error). A failing EB stops the other EB processes.
"""
import datetime
import collections
import glob
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import tarfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import calapply  # noqa: E402
import casa_steps  # noqa: E402
import manifest as manifest_mod  # noqa: E402
import ppr as ppr_mod  # noqa: E402


class RestoreError(Exception):
    """A restore failure with a one-line reason; detail goes to the errorexit file."""

    def __init__(self, reason, detail=""):
        super().__init__(reason)
        self.reason = reason
        self.detail = detail


class Terminated(BaseException):
    pass


def utcnow():
    return datetime.datetime.now(datetime.timezone.utc)


class CasaLog:
    """Appends CASA-format lines (date time<TAB>PRIORITY<TAB>origin<TAB>message) to the run's casa log."""

    def __init__(self, path):
        self.path = path

    def post(self, message, priority="INFO", origin="restore_mous::::casa"):
        line = "%s\t%s\t%s\t%s\n" % (utcnow().strftime("%Y-%m-%d %H:%M:%S"), priority, origin,
                                      " ".join(str(message).split()))
        with open(self.path, "a") as f:
            f.write(line)


class Restore:
    def __init__(self, ppr_path, cwd=None, environ=None, parallel=1, archive_limits=None):
        self.ppr_path = ppr_path
        self.parallel = max(1, int(parallel))
        # archive path -> safe_extract limits (casa_steps.load_archive_limits); None: DEFAULT_LIMITS.
        self.archive_limits = archive_limits or (lambda archive: None)
        self.environ = dict(os.environ if environ is None else environ)
        self.working = os.path.abspath(cwd or os.getcwd())
        self.started = utcnow()
        self.log = None
        self.done = 0
        self.total = 1
        self.timings = {}

    # ------------------------------------------------------------------ output helpers
    def progress(self, text, advance=1):
        self.done += advance
        print("PROGRESS %d %d %s" % (self.done, self.total, text), flush=True)
        if self.log:
            self.log.post(text)

    def open_log(self):
        self.log = CasaLog(os.path.join(self.working, "casa-%s.log" % self.started.strftime("%Y%m%d-%H%M%S")))
        self.log.post("restore_mous starting: PPR %s" % self.ppr_path)

    # ------------------------------------------------------------------ phases
    def run(self):
        try:
            p = ppr_mod.parse(self.ppr_path)
        except ppr_mod.PPRError as e:
            self.open_log()
            raise RestoreError("PPR %s: %s" % (os.path.basename(self.ppr_path), e))
        working, rawdata, products = ppr_mod.directories(p, cwd=self.working, environ=self.environ)
        if not os.path.isdir(working):
            self.open_log()
            raise RestoreError("working directory missing: %s" % working)
        self.working = os.path.abspath(working)
        os.chdir(self.working)
        self.open_log()
        self.rawdata, self.products = rawdata, products
        asdms = p["asdms"]
        sessions = []
        for a in asdms:
            if a["session"] not in sessions:
                sessions.append(a["session"])
        copytoraw = True
        for c in p["commands"]:
            if c["command"] == "hifa_restoredata" and "copytoraw" in c["params"]:
                copytoraw = bool(c["params"]["copytoraw"])
        self.total = 1 + len(casa_steps.EB_STAGES) * len(asdms)
        m, calls = self.preflight(asdms, sessions, copytoraw)
        oussid = ppr_mod.sanitize(p["OUSStatusRef"]["entityId"])
        if m.ous_name and m.ous_name != oussid:
            self.log.post("manifest ous %s differs from the PPR's OUSStatusRef %s" % (m.ous_name, oussid), "WARN")
        self.log.post("manifest %s: original CASA %s, pipeline %s, procedure %s" % (
            os.path.basename(m.path), m.values.get("casaversion"), m.values.get("pipeline_version"),
            m.values.get("procedure_name")))
        # Caltables named after a session (not after one of its MSes) serve every EB of the session: untarred
        # once here, so EB processes running in parallel never write the same files.
        for s in sessions:
            tgz = m.caltables_for(s)
            mses = tuple(a["AsdmDiskName"] + ".ms" for a in asdms if a["session"] == s)
            try:
                names = casa_steps.safe_extract(os.path.join(self.rawdata, tgz), self.working,
                                                members_filter=lambda n: n.startswith(s) and not n.startswith(mses),
                                                limits=self.archive_limits(tgz))
            except (casa_steps.StepError, tarfile.TarError, OSError) as e:
                raise RestoreError("cannot extract %s: %s" % (tgz, e))
            if names:
                self.log.post("extracted %d session caltable(s) of %s from %s"
                              % (len({n.split("/")[0] for n in names}), s, tgz))
        self.progress("preflight ok: %d ASDM(s) in %s; manifest %s; up to %d EB process(es)"
                      % (len(asdms), ", ".join(sessions), os.path.basename(m.path), self.parallel))
        jobs = []
        for a in asdms:
            disk = a["AsdmDiskName"]
            vis = disk + ".ms"
            jobs.append((disk, {"asdm": os.path.join(self.rawdata, disk),
                                "vis": os.path.join(self.working, vis),
                                "flags_tgz": os.path.join(self.rawdata, m.finalflags_for(vis)),
                                "flags_limits": self.archive_limits(m.finalflags_for(vis)),
                                "versionname": casa_steps.FINAL_FLAG_VERSION,
                                "caltables_tgz": os.path.join(self.rawdata, m.caltables_for(a["session"])),
                                "caltables_limits": self.archive_limits(m.caltables_for(a["session"])),
                                "calls": calls[vis],
                                "logfile": self.log.path}))
        EBScheduler(self, jobs).run()
        self.log.post("restore_mous finished: %s" % ", ".join(a["AsdmDiskName"] + ".ms" for a in asdms))

    def preflight(self, asdms, sessions, copytoraw):
        """Everything the PPR and manifest must provide, checked before any CASA process starts."""
        if copytoraw:
            if not os.path.isdir(self.products):
                raise RestoreError("products directory missing: %s" % self.products)
            os.makedirs(self.rawdata, exist_ok=True)
            for f in sorted(glob.glob(os.path.join(self.products, "*pipeline_manifest.xml"))):
                shutil.copy(f, self.rawdata)
        path = manifest_mod.select(self.rawdata)
        if path is None:
            raise RestoreError("no pipeline_manifest.xml in %s" % (self.products if copytoraw else self.rawdata))
        try:
            m = manifest_mod.Manifest(path)
        except manifest_mod.ManifestError as e:
            raise RestoreError(str(e))
        unsupported = m.unsupported_restore_actions()
        if unsupported:
            raise RestoreError("manifest %s asks for what the modular restore cannot reproduce: %s"
                               % (os.path.basename(path), "; ".join(unsupported)))
        if copytoraw:
            for f in m.listed_files():
                src = os.path.join(self.products, f)
                if not os.path.isfile(src):
                    raise RestoreError("product named in manifest is missing: %s" % f)
                shutil.copy(src, os.path.join(self.rawdata, f))
        calls = {}
        try:
            for s in sessions:
                tgz = m.caltables_for(s)
                if not os.path.isfile(os.path.join(self.rawdata, tgz)):
                    raise RestoreError("caltables file missing: %s" % tgz)
            for a in asdms:
                disk, vis = a["AsdmDiskName"], a["AsdmDiskName"] + ".ms"
                if not os.path.isdir(os.path.join(self.rawdata, disk)):
                    raise RestoreError("ASDM missing: rawdata/%s" % disk)
                for f in (m.finalflags_for(vis), m.applycmds_for(vis)):
                    if not os.path.isfile(os.path.join(self.rawdata, f)):
                        raise RestoreError("calibration product missing in rawdata: %s" % f)
                with open(os.path.join(self.rawdata, m.applycmds_for(vis))) as fh:
                    text = fh.read()
                try:
                    calls[vis] = calapply.prepare_file(text, os.path.join(self.working, vis), self.working)
                except calapply.CalApplyError as e:
                    raise RestoreError("%s: %s" % (m.applycmds_for(vis), e))
                if not calls[vis]:
                    raise RestoreError("%s has no applycal lines" % m.applycmds_for(vis))
                caltables = m.caltables_for(a["session"])
                members = self.caltable_members(os.path.join(self.rawdata, caltables), self.archive_limits(caltables))
                for kw in calls[vis]:
                    for t in kw["gaintable"]:
                        if os.path.basename(t) not in members:
                            raise RestoreError("caltable %s (applied to %s) is not in %s"
                                               % (os.path.basename(t), vis, m.caltables_for(a["session"])))
            # parang as hifa_restoredata decides it: one decision for every MS of the restore (calapply.parang_for).
            parang = calapply.parang_for(calls)
            for cs in calls.values():
                for kw in cs:
                    kw["parang"] = parang
            if parang:
                self.log.post("hifa_polcal caltable(s) in the apply lists: applycal with parang=True for every MS")
        except manifest_mod.ManifestError as e:
            raise RestoreError(str(e))
        return m, calls

    @staticmethod
    def caltable_members(tgz, limits=None):
        """The top-level names of a caltables tarball, reading at most the limits' maxEntries headers."""
        max_entries = (limits or casa_steps.DEFAULT_LIMITS)["maxEntries"]
        names = set()
        try:
            with tarfile.open(tgz, "r:*") as tf:
                for count, member in enumerate(tf, 1):
                    if count > max_entries:
                        raise RestoreError("%s has more than %d entries" % (os.path.basename(tgz), max_entries))
                    names.add(member.name.split("/")[0])
        except (tarfile.TarError, OSError) as e:
            raise RestoreError("cannot read %s: %s" % (os.path.basename(tgz), e))
        return names

    # ------------------------------------------------------------------ failure
    def fail(self, reason, detail=""):
        if self.log is None:
            try:
                self.open_log()
            except OSError:
                pass
        if self.log:
            try:
                self.log.post("Error in restore_mous: %s" % reason, "SEVERE")
            except OSError:
                pass
        name = "errorexit-%s.txt" % utcnow().strftime("%Y%m%dT%H%M%S")
        try:
            with open(os.path.join(self.working, name), "w") as f:
                f.write(reason + "\n")
                if detail:
                    f.write(detail.rstrip() + "\n")
        except OSError:
            pass
        print("restore_mous: %s" % reason, file=sys.stderr, flush=True)


class EBProcess:
    """One EB's CASA process (casa_steps.py restore_eb) and the threads reading its output into the events queue.

    The process boundary is per EB on purpose: (1) fidelity — CASA's results depend on what the process did
    before, so each EB gets a fresh interpreter of its own and is then bit-identical to that EB restored alone,
    whatever the order or parallelism; (2) isolation — a CASA abort() (or a crash) ends one EB's process, not
    this runner, which reports it naming the EB and stops the others; (3) stopping — a process can be stopped
    (SIGTERM, then SIGKILL) where a thread running CASA could not. It stays in this runner's process group, so
    the agent's SIGTERM/SIGKILL to the group reaches it even if this runner is killed first."""

    def __init__(self, disk, args, working, environ, events):
        self.disk = disk
        self.stage = None
        self.result = None
        self.stderr_tail = collections.deque(maxlen=20)
        self.started = time.time()
        argv = [sys.executable, os.path.join(HERE, "casa_steps.py"), "restore_eb", json.dumps(args)]
        self.proc = subprocess.Popen(argv, cwd=working, env=environ, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.pid = self.proc.pid
        self._events = events
        self._err = threading.Thread(target=self._read_stderr, daemon=True)
        self._err.start()
        threading.Thread(target=self._read_stdout, daemon=True).start()

    def _read_stderr(self):
        for line in self.proc.stderr:
            if line.strip():
                self.stderr_tail.append(line.rstrip())

    def _read_stdout(self):
        for line in self.proc.stdout:
            line = line.rstrip("\n")
            if line.startswith(casa_steps.STEP_STAGE_PREFIX):
                self._events.put((self, "stage", line[len(casa_steps.STEP_STAGE_PREFIX):].strip()))
            elif line.startswith(casa_steps.STEP_RESULT_PREFIX):
                try:
                    self.result = json.loads(line[len(casa_steps.STEP_RESULT_PREFIX):])
                except ValueError:
                    self.result = {"ok": False, "reason": "unreadable result line"}
        rc = self.proc.wait()
        self._err.join(timeout=5)
        self._events.put((self, "exit", rc))

    def failure(self, rc):
        """The one-line reason this EB failed, or None if it succeeded."""
        stage = self.stage or "start"
        if self.result is not None and not self.result.get("ok"):
            why = self.result.get("reason") or "unknown error"
        elif rc < 0:
            why = "CASA process killed by signal %d (%s)" % (-rc, _signal_name(-rc))
        elif rc != 0:
            tail = list(self.stderr_tail)[-1:]
            why = "CASA process exited with status %d%s" % (rc, (": " + tail[0]) if tail else "")
        elif self.result is None:
            why = "CASA process produced no result"
        else:
            return None
        return "%s failed for EB %s: %s" % (stage, self.disk, why)

    def stop(self, grace):
        """SIGTERM, then SIGKILL after grace seconds; waits for the process."""
        if self.proc.poll() is None:
            try:
                self.proc.terminate()
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
            except OSError:
                pass
        try:
            self.proc.wait(timeout=grace + 5)
        except subprocess.TimeoutExpired:
            pass


def _signal_name(num):
    try:
        return signal.Signals(num).name
    except ValueError:
        return "signal %d" % num


class EBScheduler:
    """Runs the EB processes, at most restore.parallel at a time, in PPR order; turns their stage lines into
    PROGRESS lines; the first failure stops every other EB process and fails the restore naming the EB."""

    STOP_GRACE = 5.0

    def __init__(self, restore, jobs):
        self.restore = restore
        self.jobs = list(jobs)
        self.events = queue.Queue()
        self.running = {}
        self.finished = 0

    def _line(self, eb, text):
        return "EB %s: %s (%d/%d EBs done)" % (eb.disk, text, self.finished, len(self.jobs))

    def run(self):
        r = self.restore
        pending = list(self.jobs)
        try:
            while pending or self.running:
                while pending and len(self.running) < r.parallel:
                    disk, args = pending.pop(0)
                    eb = EBProcess(disk, args, r.working, r.environ, self.events)
                    self.running[eb.pid] = eb
                    r.log.post("EB %s: CASA process %d started" % (disk, eb.pid))
                try:
                    eb, kind, value = self.events.get(timeout=0.5)
                except queue.Empty:
                    continue
                if kind == "stage":
                    # A new stage means the previous one is done.
                    advance = 1 if eb.stage is not None else 0
                    eb.stage = value
                    r.progress(self._line(eb, value), advance=advance)
                    continue
                del self.running[eb.pid]
                reason = eb.failure(value)
                r.timings["EB %s" % eb.disk] = round(time.time() - eb.started, 2)
                if reason is not None:
                    detail = "\n".join(eb.stderr_tail)
                    raise RestoreError(reason, detail)
                self.finished += 1
                r.progress(self._line(eb, "done, %s caltable(s), %s applycal call(s)"
                                      % ((eb.result or {}).get("caltables"), (eb.result or {}).get("applied"))))
        finally:
            self.stop_all()

    def stop_all(self):
        """Stops every EB process still running (another EB failed, or this runner was terminated)."""
        for eb in list(self.running.values()):
            if eb.proc.poll() is None:
                try:
                    self.restore.log.post("EB %s: stopping CASA process %d" % (eb.disk, eb.pid), "WARN")
                except OSError:
                    pass
            eb.stop(self.STOP_GRACE)
        self.running.clear()


def _terminate(signum, frame):
    raise Terminated(signal.Signals(signum).name)


def default_parallel():
    """Half the cores, at least 1 (the agent passes casa.parallelExecBlocks, whose default is the same)."""
    return max(1, (os.cpu_count() or 1) // 2)


USAGE = "usage: restore_mous.py [--parallel N] [--archive-limits FILE] /abs/path/PPR.xml"


def parse_args(argv):
    """(parallel, ppr, archive limits file or None) or None for a usage error."""
    parallel = default_parallel()
    limits_file = None
    args = list(argv)
    while args and args[0].startswith("-"):
        opt = args.pop(0)
        name, sep, value = opt.partition("=")
        if name not in ("--parallel", "--archive-limits"):
            return None
        if not sep:
            if not args:
                return None
            value = args.pop(0)
        if name == "--archive-limits":
            if not value:
                return None
            limits_file = value
            continue
        if not value.isdigit() or int(value) < 1:
            return None
        parallel = int(value)
    if len(args) != 1:
        return None
    return parallel, args[0], limits_file


def main(argv):
    parsed = parse_args(argv)
    if parsed is None:
        print(USAGE, file=sys.stderr)
        return 2
    parallel, ppr_path, limits_file = parsed
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, _terminate)
    r = Restore(os.path.abspath(ppr_path), parallel=parallel)
    try:
        if limits_file is not None:
            try:
                r.archive_limits = casa_steps.load_archive_limits(limits_file)
            except casa_steps.StepError as e:
                raise RestoreError(str(e))
        r.run()
    except RestoreError as e:
        r.fail(e.reason, e.detail)
        return 1
    except Terminated as e:
        r.fail("terminated by %s" % e)
        return 1
    except Exception as e:  # an unexpected bug still ends in errorexit with a reason
        import traceback
        r.fail("internal error: %s: %s" % (type(e).__name__, e), traceback.format_exc())
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
