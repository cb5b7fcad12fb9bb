#!/usr/bin/env python3
"""Restore the calibrated MSes of one ALMA MOUS from a restore PPR, the way hifa_restoredata does, with plain
CASA tasks (modular CASA; the ALMA pipeline is not needed).

Usage (CASA venv python; cwd = <root>/<RelativePath>/working; env per casa/casaenv.py):
    restore_mous.py /abs/path/PPR.xml

Contract (INTERFACES.md §3):
- PPR parsed as executeppr does (ppr.py); rawdata = $SCIPIPE_ROOTDIR/<RelativePath>/rawdata (../rawdata if unset).
- copytoraw=True semantics: products/*pipeline_manifest.xml and the files the manifest lists are copied from
  ../products into rawdata/; the manifest is chosen like hifa_restoredata (manifest.py).
- Everything the manifest and PPR must provide is checked before any CASA process starts.
- Per ASDM: importasdm (pipeline parameters), filler flagversions removed, finalflags untarred,
  flagmanager restore Pipeline_Final; per session: caltables untarred (session name, else 'default');
  per ASDM: every applycal( line replayed (calapply.py), applymode='calflagstrict', flagbackup=False.
- Every CASA operation in its own subprocess. Progress: 'PROGRESS <done> <total> <text>' on stdout.
- Failure: errorexit-<UTC YYYYmmddTHHMMSS>.txt in working/, a SEVERE line in the casa log, a one-line
  reason on stderr, exit status 1 (2 for a usage error).
"""
import datetime
import glob
import os
import shutil
import signal
import sys
import tarfile
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
    def __init__(self, ppr_path, cwd=None, environ=None):
        self.ppr_path = ppr_path
        self.environ = dict(os.environ if environ is None else environ)
        self.working = os.path.abspath(cwd or os.getcwd())
        self.started = utcnow()
        self.log = None
        self.done = 0
        self.total = 1
        self.timings = {}

    # ------------------------------------------------------------------ output helpers
    def progress(self, text):
        self.done += 1
        print("PROGRESS %d %d %s" % (self.done, self.total, text), flush=True)
        if self.log:
            self.log.post(text)

    def open_log(self):
        self.log = CasaLog(os.path.join(self.working, "casa-%s.log" % self.started.strftime("%Y%m%d-%H%M%S")))
        self.log.post("restore_mous starting: PPR %s" % self.ppr_path)

    def step(self, name, args, label):
        t0 = time.time()
        ok, reason, _ = casa_steps.run_step(name, dict(args, logfile=self.log.path), cwd=self.working,
                                            env=self.environ)
        self.timings["%s %s" % (name, label)] = round(time.time() - t0, 2)
        if not ok:
            raise RestoreError("%s failed for %s: %s" % (name, label, reason))

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
        self.total = 1 + 3 * len(asdms) + len(sessions)
        m, calls = self.preflight(asdms, sessions, copytoraw)
        oussid = ppr_mod.sanitize(p["OUSStatusRef"]["entityId"])
        if m.ous_name and m.ous_name != oussid:
            self.log.post("manifest ous %s differs from the PPR's OUSStatusRef %s" % (m.ous_name, oussid), "WARN")
        self.log.post("manifest %s: original CASA %s, pipeline %s, procedure %s" % (
            os.path.basename(m.path), m.values.get("casaversion"), m.values.get("pipeline_version"),
            m.values.get("procedure_name")))
        self.progress("preflight ok: %d ASDM(s) in %s; manifest %s"
                      % (len(asdms), ", ".join(sessions), os.path.basename(m.path)))

        for a in asdms:
            disk = a["AsdmDiskName"]
            self.step("importasdm", {"asdm": os.path.join(self.rawdata, disk),
                                     "vis": os.path.join(self.working, disk + ".ms")}, disk)
            self.progress("imported %s" % disk)
        for a in asdms:
            vis = a["AsdmDiskName"] + ".ms"
            self.step("restore_flags", {"vis": os.path.join(self.working, vis),
                                        "tgz": os.path.join(self.rawdata, m.finalflags_for(vis)),
                                        "versionname": casa_steps.FINAL_FLAG_VERSION}, vis)
            self.progress("restored flags %s of %s" % (casa_steps.FINAL_FLAG_VERSION, vis))
        for s in sessions:
            tgz = m.caltables_for(s)
            prefixes = tuple([a["AsdmDiskName"] + ".ms" for a in asdms if a["session"] == s] + [s])
            try:
                names = casa_steps.safe_extract(os.path.join(self.rawdata, tgz), self.working,
                                                members_filter=lambda n: n.startswith(prefixes))
            except (casa_steps.StepError, tarfile.TarError, OSError) as e:
                raise RestoreError("cannot extract %s: %s" % (tgz, e))
            ntab = len({n.split("/")[0] for n in names})
            self.progress("extracted %d caltable(s) of %s from %s" % (ntab, s, tgz))
        for a in asdms:
            vis = a["AsdmDiskName"] + ".ms"
            self.step("applycal", {"vis": os.path.join(self.working, vis), "calls": calls[vis]}, vis)
            self.progress("applied %d applycal call(s) to %s" % (len(calls[vis]), vis))
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
                members = self.caltable_members(os.path.join(self.rawdata, m.caltables_for(a["session"])))
                for kw in calls[vis]:
                    for t in kw["gaintable"]:
                        if os.path.basename(t) not in members:
                            raise RestoreError("caltable %s (applied to %s) is not in %s"
                                               % (os.path.basename(t), vis, m.caltables_for(a["session"])))
        except manifest_mod.ManifestError as e:
            raise RestoreError(str(e))
        return m, calls

    @staticmethod
    def caltable_members(tgz):
        try:
            with tarfile.open(tgz, "r:*") as tf:
                return {n.split("/")[0] for n in tf.getnames()}
        except (tarfile.TarError, OSError) as e:
            raise RestoreError("cannot read %s: %s" % (os.path.basename(tgz), e))

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


def _terminate(signum, frame):
    raise Terminated(signal.Signals(signum).name)


def main(argv):
    if len(argv) != 1 or argv[0].startswith("-"):
        print("usage: restore_mous.py /abs/path/PPR.xml", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, _terminate)
    r = Restore(os.path.abspath(argv[0]))
    try:
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
