#!/usr/bin/env python3
"""Synthesize a small ALMA-like MOUS fixture: ASDMs, pipeline-named calibration products, catalogue, references.

Usage (with the CASA venv's python):  make_fixture.py OUTDIR

Writes OUTDIR/store/<fileId> (the archive store, flat), OUTDIR/catalog.json (catalogue import format,
schema dropbox-agent/catalog/v1), OUTDIR/packages/<variant>/ (the MOUSes as ALMA download packages, made from the
store files), OUTDIR/reference/<AsdmDiskName>.ms (calibrated reference MSes) and
OUTDIR/fixture.json (summary). See casa/README.md for the layout and the choices made.

Every CASA operation runs in its own subprocess (``make_fixture.py --stage NAME JSON`` or casa_steps.py).
"""
import concurrent.futures
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import calapply  # noqa: E402
import casa_steps  # noqa: E402

GENERATOR_VERSION = "1.0"

PROJECT = "2023.1.00042.S"
OBS_PROJECT = "uid://A001/X3f01/X1a0"
PROJECT_STATUS = "uid://A001/X3f01/X1a1"
SOUS = "uid://A001/X3f01/X1a3"
GOUS = "uid://A001/X3f01/X1a4"
RECIPE = "hifa_calimage"
ORIGINAL_CASA = "6.5.4.9"
ORIGINAL_PIPELINE = "2023.1.0.124"
PIPELINE_WORKDIR = ("/lustre/naasc/sciops/comm/pipeline/2023.1.00042.S_2024_03_07T12_00_00.000/"
                    "SOUS_uid___A001_X3f01_X1a3/GOUS_uid___A001_X3f01_X1a4/MOUS_%s/working")

# Sources: bandpass/flux calibrator, phase calibrator, science target (high at ALMA around 10 UT in March).
FIELDS = [
    {"name": "J1625-2527", "ra": "16h25m46.9s", "dec": "-25d27m38s", "flux": 1.0, "offset": None,
     "intents": ["CALIBRATE_BANDPASS", "CALIBRATE_FLUX"], "short": "AMPLITUDE,BANDPASS"},
    {"name": "J1626-2951", "ra": "16h26m06.0s", "dec": "-29d51m27s", "flux": 0.5, "offset": None,
     "intents": ["CALIBRATE_PHASE"], "short": "PHASE"},
    {"name": "Demo_target", "ra": "16h27m00.0s", "dec": "-24d30m00s", "flux": 0.3, "offset": "1arcsec",
     "intents": ["OBSERVE_TARGET"], "short": "TARGET"},
]
# (field index, start s, stop s) relative to the EB reference time; 6.048 s integrations.
SCANS = [(0, 0, 60), (1, 70, 100), (2, 110, 200), (1, 210, 240), (2, 250, 340), (1, 350, 380)]
REFANT = "DA41"
# Spectral windows, in MS order. The two science spws (16 channels, FULL_RES) and, as in every real ALMA EB, a
# non-science one: the channel-average spw of baseband 1 (`#CH_AVG`, one channel holding the average of SPW0), which
# the correlator writes beside each full-resolution spw and is observed in every scan with that scan's intents.
# scriptForPI's split and the pipeline's science-spw selection leave it out; the calibration never touches it.
SPWS = [
    {"sim": "SPW0", "freq": "100GHz", "width": "15.625MHz", "nchan": 16, "kind": "FULL_RES", "baseband": 1},
    {"sim": "SPW1", "freq": "102GHz", "width": "15.625MHz", "nchan": 16, "kind": "FULL_RES", "baseband": 2},
    {"sim": "SPW2", "freq": "100.1171875GHz", "width": "250MHz", "nchan": 1, "kind": "CH_AVG", "baseband": 1,
     "averageOf": 0},
]
SCIENCE_SPWS = [0, 1]

# Execution blocks, in time order. The QA0 Fail EB sits in its own session between the two Pass EBs, so the
# Pass EBs are in session_1 and session_3 and SESSION_2 must be emitted empty (see README).
EXEC_BLOCKS = [
    {"uid": "uid://A002/Xb1e2a0/X1", "rangeid": "Xb1e2a0", "qa0": "Pass", "session": 1, "seed": 11,
     "ref": "2024/03/01/10:05:00", "start": "2024-03-01T10:05:00Z", "flag": {"antenna": "DA44", "scan": "3"}},
    {"uid": "uid://A002/Xb1ee10/X1", "rangeid": None, "qa0": "Fail", "session": 2, "seed": None,
     "ref": None, "start": "2024-03-03T09:58:00Z", "end": "2024-03-03T10:01:30Z"},
    {"uid": "uid://A002/Xb1f3c4/X1", "rangeid": "Xb1f3c4", "qa0": "Pass", "session": 3, "seed": 23,
     "ref": "2024/03/05/09:50:00", "start": "2024-03-05T09:50:00Z", "flag": {"antenna": "DA42", "scan": "5"}},
]
SESSIONS = {1: ("2024-03-01T10:00:00Z", "2024-03-01T11:00:00Z"),
            2: ("2024-03-03T09:55:00Z", "2024-03-03T10:05:00Z"),
            3: ("2024-03-05T09:45:00Z", "2024-03-05T10:30:00Z")}

MOUSES = [
    {"key": "A", "mous": "uid://A001/X3f01/X1a5", "partId": "X1573098450", "title": "Synthetic demo MOUS",
     "sb": {"uid": "uid://A001/X3f01/X1a6", "name": "Demo_a_03_TM1", "statusUid": "uid://A001/X3f01/X1a7"},
     "drop_caltables_for": None},
    {"key": "B", "mous": "uid://A001/X3f01/X1b0", "partId": "X1573098451",
     "title": "Synthetic MOUS with a manifest lacking a session's caltables",
     "sb": {"uid": "uid://A001/X3f01/X1b1", "name": "Demo_b_03_TM1", "statusUid": "uid://A001/X3f01/X1b2"},
     "drop_caltables_for": 3, "eb_serial": "X2"},
    # Four execution blocks, two per session: each Pass EB's data twice, under EB serials X3 and X4 (the restore
    # does the same work whatever the visibilities hold; its MSes equal the references of the EBs they copy).
    # For the per-EB parallelism bench (bench/restore4.sh); no download package.
    {"key": "C", "mous": "uid://A001/X3f01/X1c0", "partId": "X1573098452", "title": "Synthetic MOUS with four EBs",
     "sb": {"uid": "uid://A001/X3f01/X1c1", "name": "Demo_c_03_TM1", "statusUid": "uid://A001/X3f01/X1c2"},
     "drop_caltables_for": None, "eb_serials": ["X3", "X4"]},
]


def eb_serials(m):
    """The EB serials of MOUS `m`: one EB per serial for each of the fixture's EBs (None: the EB's own uid)."""
    return m.get("eb_serials") or [m.get("eb_serial")]


def eb_uid(eb, m, serial=None):
    """The EB uid of `eb` in MOUS `m`. In ALMA an EB belongs to one SB and so to one MOUS; MOUS B gets its own EBs
    (same data, serial X2 instead of X1), repacked under their own AsdmDiskNames; MOUS C two of each (X3, X4)."""
    serial = serial or eb_serials(m)[0]
    return eb["uid"].rsplit("/", 1)[0] + "/" + serial if serial else eb["uid"]


def sanitize(uid):
    return uid.replace(":", "_").replace("/", "_")


def table_names(vis):
    """Pipeline-like caltable names for one MS."""
    return {
        "bcal": vis + ".hifa_bandpass.s6_3.spw0_1.channel.solintinf.bcal.tbl",
        "gpint": vis + ".hifa_timegaincal.s14_1.spw0_1.solintint.gpcal.tbl",
        "gpinf": vis + ".hifa_timegaincal.s14_3.spw0_1.solintinf.gpcal.tbl",
        "gacal": vis + ".hifa_timegaincal.s14_5.spw0_1.solintinf.gacal.tbl",
    }


def calapply_text(vis, mous):
    """The pipeline's <vis>.calapply.txt for one MS (short intents, absolute original paths)."""
    t = table_names(vis)
    root = PIPELINE_WORKDIR % sanitize(mous)
    p = lambda k: "%s/%s" % (root, t[k])  # noqa: E731
    bp, ph, tg = FIELDS[0]["name"], FIELDS[1]["name"], FIELDS[2]["name"]
    lines = ["# Apply file for %s" % vis]
    fmt = ("applycal(vis='{root}/{vis}', field='{field}', intent='{intent}', spw='0,1', antenna='*&*', "
           "gaintable={gt!r}, gainfield={gf!r}, spwmap=[[], [], []], interp={ip!r}, calwt=[False, True, True])")
    lines.append(fmt.format(root=root, vis=vis, field=bp, intent=FIELDS[0]["short"],
                            gt=[p("bcal"), p("gpint"), p("gacal")], gf=["", bp, bp],
                            ip=["linear,linear", "linear", "linear"]))
    lines.append(fmt.format(root=root, vis=vis, field=ph, intent=FIELDS[1]["short"],
                            gt=[p("bcal"), p("gpint"), p("gacal")], gf=["", ph, bp],
                            ip=["linear,linear", "linear", "linear"]))
    lines.append(fmt.format(root=root, vis=vis, field=tg, intent=FIELDS[2]["short"],
                            gt=[p("bcal"), p("gpinf"), p("gacal")], gf=["", ph, bp],
                            ip=["linear,linear", "linear", "linear"]))
    return "\n".join(lines) + "\n"


# ============================================================================ CASA stages (own subprocesses)

def stage_synth(a):
    """Simulate one EB, corrupt it (seeded), make it exportable, export the ASDM, fix its XML tables."""
    import numpy as np
    import casadata
    import casatools
    import casatasks
    import asdm_fixups
    casa_steps._casalog_to(a.get("logfile"))
    me, qa, sm, tb = casatools.measures(), casatools.quanta(), casatools.simulator(), casatools.table()
    work, ms = a["work"], os.path.join(a["work"], "sim.ms")
    cfg = os.path.join(casadata.datapath, "alma", "simmos", "alma.cycle10.1.cfg")
    rows = [ln.split() for ln in open(cfg) if ln.strip() and not ln.startswith("#")][:6]
    sm.open(ms)
    sm.setconfig(telescopename="ALMA", x=[float(r[0]) for r in rows], y=[float(r[1]) for r in rows],
                 z=[float(r[2]) for r in rows], dishdiameter=[12.0] * 6, mount=["ALT-AZ"] * 6,
                 antname=["DA4%d" % (i + 1) for i in range(6)], padname=[r[4] for r in rows],
                 coordsystem="local", referencelocation=me.observatory("ALMA"))
    for w in SPWS:
        sm.setspwindow(spwname=w["sim"], freq=w["freq"], deltafreq=w["width"], freqresolution=w["width"],
                       nchannels=w["nchan"], stokes="XX YY")
    sm.setfeed(mode="perfect X Y")
    for f in FIELDS:
        sm.setfield(sourcename=f["name"], sourcedirection=me.direction("J2000", f["ra"], f["dec"]))
    sm.setlimits(shadowlimit=0.001, elevationlimit="8.0deg")
    sm.setauto(autocorrwt=0.0)
    sm.settimes(integrationtime="6.048s", usehourangle=False, referencetime=me.epoch("UTC", a["ref"]))
    for fi, t0, t1 in SCANS:
        mode = ",".join("%s#ON_SOURCE" % i for i in FIELDS[fi]["intents"])
        for spw in (w["sim"] for w in SPWS):
            sm.observe(sourcename=FIELDS[fi]["name"], spwname=spw, starttime="%ds" % t0, stoptime="%ds" % t1,
                       state_obs_mode=mode, project=PROJECT, observer="demo")

    # Sky model computed directly (point sources; the target 1 arcsec off centre). sm.predict with one
    # component list would put every source into every field, which is not what a calibrator looks like.
    c_light = 299792458.0
    tb.open(ms + "/SPECTRAL_WINDOW")
    chan_freq = [tb.getcell("CHAN_FREQ", i) for i in range(tb.nrows())]
    tb.close()
    # The science spws first (the same rows, in the same order, as before the channel-average spw existed, so
    # their data and seeded noise do not depend on it); the channel-average spw is computed from them below.
    tb.open(ms, nomodify=False)
    whole = tb
    sci = "DATA_DESC_ID IN [%s]" % ",".join(str(i) for i in SCIENCE_SPWS)
    tb = whole.query(sci)
    uvw, fid, ddid = tb.getcol("UVW"), tb.getcol("FIELD_ID"), tb.getcol("DATA_DESC_ID")
    shape = tb.getcol("DATA").shape
    model = np.zeros(shape, dtype=complex)
    for i, f in enumerate(FIELDS):
        off = qa.convert(qa.quantity(f["offset"]), "rad")["value"] if f["offset"] else 0.0
        l, m = off * np.sin(np.pi / 4), off * np.cos(np.pi / 4)
        for s in SCIENCE_SPWS:
            rows = (fid == i) & (ddid == s)
            lam = c_light / np.asarray(chan_freq[s])
            ph = 2 * np.pi * (uvw[0, rows][None, :] * l + uvw[1, rows][None, :] * m) / lam[:, None]
            model[:, :, rows] = f["flux"] * np.exp(-1j * ph)[None, :, :]
    tb.putcol("DATA", model)

    # Corrupt: smooth antenna gains and bandpasses plus seeded noise, written into DATA.
    rng = np.random.default_rng(a["seed"])
    t = tb.getcol("TIME")
    a1, a2, dd = tb.getcol("ANTENNA1"), tb.getcol("ANTENNA2"), tb.getcol("DATA_DESC_ID")
    d = tb.getcol("DATA")
    npol, nch, nrow = d.shape
    nant = 6
    tt = (t - t.min()) / 400.0
    amp0 = 1 + 0.1 * rng.standard_normal((nant, npol))
    ph0 = rng.uniform(-np.pi, np.pi, (nant, npol))
    rate = 0.8 * rng.standard_normal((nant, npol))
    bp = ((1 + 0.05 * rng.standard_normal((nant, npol, 2, nch)))
          * np.exp(1j * 0.2 * rng.standard_normal((nant, npol, 2, nch))))
    g1 = amp0[a1].T * np.exp(1j * (ph0[a1].T + rate[a1].T * tt * 1.5))
    g2 = amp0[a2].T * np.exp(1j * (ph0[a2].T + rate[a2].T * tt * 1.5))
    b1 = np.transpose(bp[a1, :, dd, :], (1, 2, 0))
    b2 = np.transpose(bp[a2, :, dd, :], (1, 2, 0))
    noise = 0.05 * (rng.standard_normal(d.shape) + 1j * rng.standard_normal(d.shape))
    corrupted = d * (g1 * np.conj(g2))[:, None, :] * b1 * np.conj(b2) + noise
    tb.putcol("DATA", corrupted)
    tb.close()
    tb = whole
    # Each non-science spw holds the channel average of its science spw's data (ALMA's CH_AVG spws).
    key = lambda i: (round(float(t[i]), 3), int(a1[i]), int(a2[i]), int(dd[i]))  # noqa: E731
    index = {key(i): i for i in range(len(t))}
    for w_id, w in enumerate(SPWS):
        if w_id in SCIENCE_SPWS:
            continue
        q = tb.query("DATA_DESC_ID == %d" % w_id)
        qt, q1, q2 = q.getcol("TIME"), q.getcol("ANTENNA1"), q.getcol("ANTENNA2")
        rows = [index[(round(float(qt[i]), 3), int(q1[i]), int(q2[i]), w["averageOf"])] for i in range(len(qt))]
        q.putcol("DATA", corrupted[:, :, rows].mean(axis=1, keepdims=True))
        q.close()
    nspw = len(SPWS)
    tb.putcol("SCAN_NUMBER", (tb.getcol("SCAN_NUMBER") + nspw - 1) // nspw)
    iv = tb.getcol("INTERVAL")
    tb.close()
    # exportasdm fix-ups: one POLARIZATION row; OBSERVATION.TIME_RANGE covering the data; time-ordered rows.
    tb.open(ms + "/DATA_DESCRIPTION", nomodify=False)
    tb.putcol("POLARIZATION_ID", np.zeros(tb.nrows(), dtype=np.int32))
    tb.close()
    tb.open(ms + "/POLARIZATION", nomodify=False)
    tb.removerows(list(range(1, tb.nrows())))
    tb.close()
    tb.open(ms + "/OBSERVATION", nomodify=False)
    tb.putcell("TIME_RANGE", 0, np.array([t.min() - iv[0], t.max() + iv[0]]))
    tb.close()
    sorted_ms = os.path.join(work, "sorted.ms")
    tb.open(ms)
    q = tb.query("", sortlist="TIME,DATA_DESC_ID,ANTENNA1,ANTENNA2")
    c = q.copy(sorted_ms, deep=True)
    c.close()
    q.close()
    tb.close()
    asdm = a["asdm"]
    casatasks.exportasdm(vis=sorted_ms, asdm=asdm, archiveid="A002", rangeid=a["rangeid"],
                         subscanduration="6s", verbose=False)
    exported = "uid://A002/%s/X1" % a["rangeid"]
    with open(os.path.join(asdm, "ASDM.xml"), encoding="ISO-8859-1") as f:
        if exported not in f.read():
            raise casa_steps.StepError("exportasdm did not produce %s" % exported)
    nscans = asdm_fixups.regroup_scans(asdm, {f["name"]: f["intents"] for f in FIELDS})
    asdm_fixups.name_spws(asdm, kinds=[w["kind"] for w in SPWS], basebands=[w["baseband"] for w in SPWS])
    asdm_fixups.set_project(asdm, OBS_PROJECT)
    asdm_fixups.set_creation_time(asdm, a["created"])
    shutil.rmtree(ms)
    shutil.rmtree(sorted_ms)
    return {"scans": nscans}


def stage_solve(a):
    """The stand-in pipeline calibration: deterministic flags, bandpass, phase and amplitude gains."""
    import casatasks
    casa_steps._casalog_to(a.get("logfile"))
    vis = a["vis"]
    t = {k: os.path.join(os.path.dirname(vis), v) for k, v in table_names(os.path.basename(vis)).items()}
    bp, ph = FIELDS[0]["name"], FIELDS[1]["name"]
    science = ",".join(str(i) for i in SCIENCE_SPWS)
    casatasks.flagdata(vis=vis, mode="manual", spw="%s:0;15" % science.replace(",", "~"), flagbackup=False)
    casatasks.flagdata(vis=vis, mode="manual", antenna=a["flag"]["antenna"], scan=a["flag"]["scan"],
                       flagbackup=False)
    casatasks.bandpass(vis=vis, caltable=t["bcal"], field=bp, spw=science, solint="inf", combine="scan", refant=REFANT,
                       solnorm=True, bandtype="B", minsnr=3.0)
    casatasks.gaincal(vis=vis, caltable=t["gpint"], field="%s,%s" % (bp, ph), spw=science, solint="int", calmode="p",
                      refant=REFANT, gaintype="G", gaintable=[t["bcal"]], minsnr=3.0)
    casatasks.gaincal(vis=vis, caltable=t["gpinf"], field=ph, spw=science, solint="inf", calmode="p", refant=REFANT,
                      gaintype="G", gaintable=[t["bcal"]], minsnr=3.0)
    casatasks.gaincal(vis=vis, caltable=t["gacal"], field=bp, spw=science, solint="inf", calmode="a",
                      refant=REFANT, gaintype="T", gaintable=[t["bcal"], t["gpint"]], minsnr=3.0)
    for k, path in t.items():
        if not os.path.isdir(path):
            raise casa_steps.StepError("solve produced no %s table" % k)
    return {"tables": sorted(os.path.basename(p) for p in t.values())}


def stage_save_flags(a):
    import casatasks
    casa_steps._casalog_to(a.get("logfile"))
    casatasks.flagmanager(vis=a["vis"], mode="save", versionname=casa_steps.FINAL_FLAG_VERSION,
                          comment=casa_steps.FINAL_FLAG_COMMENT, merge="replace")
    return {}


STAGES = {"synth": stage_synth, "solve": stage_solve, "save_flags": stage_save_flags}


# ============================================================================ driver (no CASA imports)

class Runner:
    def __init__(self, env, logfile, cwd):
        self.env = env
        self.cwd = cwd
        self.logfile = logfile
        self.timings = {}

    def stage(self, name, args, label):
        t0 = time.time()
        argv = [sys.executable, os.path.abspath(__file__), "--stage", name, json.dumps(dict(args, logfile=self.logfile))]
        p = subprocess.run(argv, env=self.env, cwd=self.cwd, capture_output=True, text=True)
        self._finish(name, label, t0, p.returncode, p.stdout, p.stderr)

    def step(self, name, args, label):
        t0 = time.time()
        ok, reason, _ = casa_steps.run_step(name, dict(args, logfile=self.logfile), env=self.env, cwd=self.cwd)
        self.timings["%s %s" % (name, label)] = round(time.time() - t0, 2)
        if not ok:
            raise RuntimeError("%s %s failed: %s" % (name, label, reason))

    def _finish(self, name, label, t0, rc, out, err):
        self.timings["%s %s" % (name, label)] = round(time.time() - t0, 2)
        result = None
        for line in out.splitlines():
            if line.startswith(casa_steps.STEP_RESULT_PREFIX):
                result = json.loads(line[len(casa_steps.STEP_RESULT_PREFIX):])
        if rc != 0 or not result or not result.get("ok"):
            raise RuntimeError("stage %s %s failed (exit %d): %s\n%s" % (
                name, label, rc, (result or {}).get("reason"), err[-3000:]))


def tar_deterministic(out_path, base_dir, names, arc_prefix="", compress=True, normalize_modes=False):
    """Tar of base_dir/<name> trees with sorted entries, fixed owner and mtime; gzip'd with gzip mtime 0 unless
    compress=False (a plain POSIX tar, as the archive's download packages are). normalize_modes sets 0644 on files
    and 0755 on directories."""
    import gzip
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        def add(path, arc):
            ti = tf.gettarinfo(path, arc)
            ti.uid = ti.gid = 0
            ti.uname = ti.gname = "root"
            ti.mtime = 1709900000
            if normalize_modes:
                ti.mode = 0o755 if ti.isdir() else 0o644
            if ti.isreg():
                with open(path, "rb") as f:
                    tf.addfile(ti, f)
            else:
                tf.addfile(ti)
            if os.path.isdir(path) and not os.path.islink(path):
                for child in sorted(os.listdir(path)):
                    add(os.path.join(path, child), arc + "/" + child)
        for n in sorted(names):
            add(os.path.join(base_dir, n), (arc_prefix + n) if arc_prefix else n)
    with open(out_path, "wb") as raw:
        if not compress:
            raw.write(buf.getvalue())
            return
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz:
            gz.write(buf.getvalue())


def write_fits(path, seed):
    """A tiny valid FITS image (8x8 float32) standing in for an archived science image."""
    import struct
    cards = ["SIMPLE  =                    T", "BITPIX  =                  -32", "NAXIS   =                    2",
             "NAXIS1  =                    8", "NAXIS2  =                    8", "BUNIT   = 'Jy/beam '",
             "OBJECT  = 'Demo_target'", "TELESCOP= 'ALMA    '", "END"]
    header = "".join(c.ljust(80) for c in cards)
    header += " " * (-len(header) % 2880)
    vals = [((i * 7 + seed) % 13) / 100.0 for i in range(64)]
    data = struct.pack(">64f", *vals)
    data += b"\0" * (-len(data) % 2880)
    with open(path, "wb") as f:
        f.write(header.encode("ascii") + data)


def manifest_xml(oussid, sessions, aux_name, restore_name, image_name, drop_caltables_for):
    """<oussid>.<recipe>.pipeline_manifest.xml (alma-restore.md §5.2)."""
    from xml.sax.saxutils import quoteattr as q
    out = ['<?xml version="1.0" ?>', "<piperesults name=%s>" % q(oussid), "  <ous name=%s>" % q(oussid),
           "    <casaversion name=%s/>" % q(ORIGINAL_CASA),
           "    <pipeline_version name=%s/>" % q(ORIGINAL_PIPELINE),
           "    <procedure_name name=%s/>" % q(RECIPE),
           '    <execution_environment><node num_mpi_servers="0"/></execution_environment>']
    for sname, ebs in sessions:
        out.append("    <session name=%s>" % q(sname))
        if drop_caltables_for != sname:
            out.append('      <caltables name=%s datatype="caltables" format="tgz"/>'
                       % q("%s.%s.caltables.tgz" % (oussid, sname)))
        for disk in ebs:
            vis = disk + ".ms"
            out.append("      <asdm name=%s>" % q(vis))
            out.append('        <finalflags name=%s datatype="ms.flagversions" format="tgz"/>'
                       % q(vis + ".flagversions.tgz"))
            out.append('        <applycmds name=%s datatype="ms.calapply" format="txt"/>' % q(vis + ".calapply.txt"))
            out.append("      </asdm>")
        out.append("    </session>")
    out.append("    <restorescript name=%s/>" % q(restore_name))
    out.append("    <image name=%s imtype=\"science\" field=\"Demo_target\" spw=\"0,1\"/>" % q(image_name))
    out.append("    <aux_products_file name=%s/>" % q(aux_name))
    out.append("  </ous>")
    out.append("</piperesults>")
    return "\n".join(out) + "\n"


def restore_script(oussid, disks, sessions):
    return ("# This CASA pipeline restore script reconstitutes calibrated visibilities from the archived\n"
            "# calibration products (%s).\n"
            "__rethrow_casa_exceptions = True\n"
            "h_init()\n"
            "try:\n"
            "    hifa_restoredata (vis=%r, session=%r, ocorr_mode='ca')\n"
            "finally:\n"
            "    h_save()\n" % (oussid, disks, sessions))


def crc32_of(path):
    crc = 0
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            crc = zlib.crc32(chunk, crc)
    return crc & 0xffffffff


def file_entry(store, name, file_class=None):
    path = os.path.join(store, name)
    e = {"ngasFileId": name, "size": os.path.getsize(path), "checksum": str(crc32_of(path)),
         "checksumVariant": "crc32"}
    if file_class:
        e = dict({"fileClass": file_class}, **e)
    return e


def eb_end_iso(eb):
    """EB end time from its reference time and the scan schedule (integration ends)."""
    import datetime
    start = datetime.datetime.strptime(eb["start"], "%Y-%m-%dT%H:%M:%SZ")
    end = start + datetime.timedelta(seconds=SCANS[-1][2] + 7)
    return end.strftime("%Y-%m-%dT%H:%M:%SZ")


def casa_env():
    """Offline CASA env for the stages: this venv's site config, private HOME, Agg, no DISPLAY."""
    import casaenv
    home = tempfile.mkdtemp(prefix="fixture-home-")
    env = casaenv.casa_env(sys.prefix, home)
    if os.environ.get("CASASITECONFIG"):
        env["CASASITECONFIG"] = os.environ["CASASITECONFIG"]
    return env, home


def generator_hash():
    h = hashlib.sha256()
    for name in ("make_fixture.py", "casa_steps.py", "calapply.py", "asdm_fixups.py"):
        with open(os.path.join(HERE, name), "rb") as f:
            h.update(f.read())
    return h.hexdigest()[:16]


# ============================================================================ download packages (alma-restore.md §9)
# What the ALMA archive delivers for one MOUS (issue 8 package spec): plain tars whose members sit
# under <project>/science_goal.<SOUS>/group.<GOUS>/member.<MOUS>/<role>/, made from the store files above (no
# extra CASA run). Only the names change; the manifest inside still names the pipeline's files.

CAL_PPR_UIDS = {"A": "uid://A001/X3f01/X1a9", "B": "uid://A001/X3f01/X1b3"}  # the calibration runs' PPR entities
CAL_RUN_RELPATH = ("2023.1.00042.S_2024_03_07T12_00_00.000/SOUS_uid___A001_X3f01_X1a3/"
                   "GOUS_uid___A001_X3f01_X1a4/MOUS_%s")
CAL_LOG_NAME = "casa-20240307-120000.log"
CALIMAGE_STAGES = ["hifa_importdata", "hifa_flagdata", "hifa_fluxcalflag", "hif_rawflagchans", "hif_refant",
                   "h_tsyscal", "hifa_tsysflag", "hifa_antpos", "hifa_wvrgcalflag", "hif_lowgainflag",
                   "hif_setmodels", "hifa_bandpassflag", "hifa_spwphaseup", "hifa_gfluxscaleflag",
                   "hifa_gfluxscale", "hifa_timegaincal", "hif_applycal", "hif_makeimlist", "hif_makeimages",
                   "hifa_exportdata"]
CALIMAGE_PARAMS = {"hifa_importdata": [("dbservice", "true"), ("asis", "SBSummary ExecBlock Antenna Station Receiver "
                                                                         "Source CalAtmosphere CalWVR CorrelatorMode")],
                   "hif_makeimlist": [("intent", "PHASE,BANDPASS,CHECK"), ("specmode", "mfs")]}


def member_path(m):
    """<project>/science_goal.uid___<SOUS>/group.uid___<GOUS>/member.uid___<MOUS>: the packages' member prefix."""
    return "/".join([PROJECT, "science_goal." + sanitize(SOUS), "group." + sanitize(GOUS),
                     "member." + sanitize(m["mous"])])


def package_tar_names(m, pass_ebs):
    oussid = sanitize(m["mous"])
    return {"aux": "%s_%s_auxiliary.tar" % (PROJECT, oussid),
            "product": "%s_%s_001_of_001.tar" % (PROJECT, oussid),
            "raw": ["%s_%s.asdm.sdm.tar" % (PROJECT, sanitize(eb_uid(eb, m))) for eb in pass_ebs],
            "readme": "member.%s.README.txt" % oussid}


def calibration_ppr(m, pass_ebs):
    """The calibration run's SciPipeRequest (hifa_calimage), as archived next to its products (alma-restore.md §3)."""
    from xml.sax.saxutils import escape as e, quoteattr as q
    sessions = {}
    for eb in pass_ebs:
        sessions.setdefault(eb["session"], []).append(eb_uid(eb, m))
    intents = [("INTERFEROMETRY_STANDARD_OBSERVING_MODE", "Undefined")]
    for n in range(1, max(SESSIONS) + 1):
        intents.append(("SESSION_%d" % n, " | ".join(sessions.get(n, []))))
    x = ['<?xml version="1.0" encoding="UTF-8"?>',
         '<ns2:SciPipeRequest xmlns:ns2="Alma/pipelinescience/SciPipeRequest" xmlns:prj="Alma/ObsPrep/ObsProject" '
         'xmlns:ps="Alma/Scheduling/ProjectStatus" xmlns:ous="Alma/Scheduling/OUSStatus" '
         'xmlns:sb="Alma/ObsPrep/SchedBlock" xmlns:sbs="Alma/Scheduling/SBStatus" xmlns:val="Alma/ValueTypes" '
         'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="ns2:SciPipeRequest">',
         '  <ns2:SciPipeRequestEntity entityId=%s entityTypeName="SciPipeRequest" datamodelVersion="1.0"/>'
         % q(CAL_PPR_UIDS[m["key"]]),
         "  <ns2:ProjectSummary>",
         "    <ns2:ProposalCode>%s</ns2:ProposalCode>" % e(PROJECT),
         "    <ns2:Observatory>ALMA</ns2:Observatory>",
         "    <ns2:Telescope>ALMA</ns2:Telescope>",
         "    <ns2:ProcessingSite>NAASC</ns2:ProcessingSite>",
         "    <ns2:Operator>pipeline</ns2:Operator>",
         "    <ns2:Mode>SCIENCE</ns2:Mode>",
         "    <ns2:Version>1.0</ns2:Version>",
         "    <ns2:CreationTime>2024-03-07T12:00:00</ns2:CreationTime>",
         "  </ns2:ProjectSummary>",
         "  <ns2:ProjectStructure>",
         "    <ns2:AlmaStructure>",
         '      <prj:ObsUnitSetRef entityId=%s partId=%s entityTypeName="ObsProject"/>'
         % (q(OBS_PROJECT), q(m["partId"])),
         "      <ns2:ObsUnitSetTitle>%s</ns2:ObsUnitSetTitle>" % e(m["title"]),
         "      <ns2:ObsUnitSetType>Member</ns2:ObsUnitSetType>",
         '      <ps:ProjectStatusRef entityId=%s entityTypeName="ProjectStatus"/>' % q(PROJECT_STATUS),
         '      <ous:OUSStatusRef entityId=%s entityTypeName="OUSStatus"/>' % q(m["mous"]),
         "    </ns2:AlmaStructure>",
         "  </ns2:ProjectStructure>",
         "  <ns2:ProcessingRequests>",
         "    <ns2:ProcessingRequest>",
         "      <ns2:ProcessingIntents>"]
    for k, v in intents:
        x.append("        <ns2:Intents><ns2:Keyword>%s</ns2:Keyword><ns2:Value>%s</ns2:Value></ns2:Intents>"
                 % (e(k), e(v)))
    x += ["      </ns2:ProcessingIntents>",
          "      <ns2:ProcessingProcedure>",
          "        <ns2:ProcedureTitle>%s</ns2:ProcedureTitle>" % RECIPE]
    for cmd in CALIMAGE_STAGES:
        params = "".join("<ns2:Parameter><ns2:Keyword>%s</ns2:Keyword><ns2:Value>%s</ns2:Value></ns2:Parameter>"
                         % (k, e(v)) for k, v in CALIMAGE_PARAMS.get(cmd, []))
        x.append("        <ns2:ProcessingCommand><ns2:Command>%s</ns2:Command><ns2:ParameterSet>%s</ns2:ParameterSet>"
                 "</ns2:ProcessingCommand>" % (cmd, params))
    x += ["      </ns2:ProcessingProcedure>",
          "      <ns2:DataSet>",
          "        <ns2:SchedBlockSet>",
          "          <ns2:SchedBlockIdentifier>",
          "            <ns2:RelativePath>%s</ns2:RelativePath>" % e(CAL_RUN_RELPATH % sanitize(m["mous"])),
          '            <sb:SchedBlockRef entityId=%s entityTypeName="SchedBlock" documentVersion="1"/>'
          % q(m["sb"]["uid"]),
          '            <sbs:SBStatusRef entityId=%s entityTypeName="SBStatus" documentVersion="1"/>'
          % q(m["sb"]["statusUid"]),
          "            <ns2:SBTitle>%s</ns2:SBTitle>" % e(m["sb"]["name"])]
    for eb in pass_ebs:
        uid = eb_uid(eb, m)
        x += ["            <ns2:AsdmIdentifier>",
              "              <ns2:AsdmRef><val:ExecBlockId>%s</val:ExecBlockId></ns2:AsdmRef>" % e(uid),
              "              <ns2:AsdmDiskName>%s</ns2:AsdmDiskName>" % e(sanitize(uid)),
              "            </ns2:AsdmIdentifier>"]
    x += ["          </ns2:SchedBlockIdentifier>",
          "        </ns2:SchedBlockSet>",
          "      </ns2:DataSet>",
          "    </ns2:ProcessingRequest>",
          "  </ns2:ProcessingRequests>",
          "  <ns2:ResultsProcessing>",
          "    <ns2:ArchiveResults>true</ns2:ArchiveResults>",
          "    <ns2:CleanUpDisk>false</ns2:CleanUpDisk>",
          "    <ns2:UpdateProjectLifeCycle>true</ns2:UpdateProjectLifeCycle>",
          "    <ns2:NotifyOperatorWhenDone>false</ns2:NotifyOperatorWhenDone>",
          "    <ns2:PipelineOperatorAdress>pipeline-operator@example.org</ns2:PipelineOperatorAdress>",
          "  </ns2:ResultsProcessing>",
          "</ns2:SciPipeRequest>"]
    return "\n".join(x) + "\n"


def script_for_pi(oussid):
    """A stand-in for the archive's scriptForPI.py: its conventions (alma-restore.md §10), not its work."""
    return ('# ALMA Data Reduction Script: scriptForPI for member.%s\n'
            '# Regenerates the calibrated measurement sets from the raw data and the calibration products.\n'
            '# Run it from the "script" directory:  casa --pipeline -c member.%s.scriptForPI.py\n'
            '# Options (set as globals before running): DOSPLIT, DOCONTSUB, SPACESAVING, USEMS.\n'
            '#\n'
            '# dropbox-agent fixture: a stand-in that keeps the real script\'s checks but restores nothing.\n'
            'import glob\nimport os\nimport sys\n\n'
            'if os.path.basename(os.getcwd()) != "script":\n'
            '    sys.exit(\'Please start this script in directory "script"\')\n'
            'if not os.path.isdir("../calibration") or not glob.glob("../raw/uid*.asdm.sdm"):\n'
            '    sys.exit("ERROR: ../calibration and ../raw/uid*.asdm.sdm are needed; untar the auxiliary and '
            'asdm.sdm tars first")\n'
            'if os.path.exists("../calibrated"):\n'
            '    sys.exit("ERROR: ../calibrated exists already")\n'
            'sys.exit("synthetic fixture: scriptForPI.py stand-in, nothing restored")\n' % (oussid, oussid))


def script_for_calibration(oussid):
    return ("# ALMA Data Reduction Script (manual calibration) for member.%s\n"
            "# Calibration performed by hand by an ALMA data reducer; run by scriptForPI.py.\n"
            "thesteps = []\nstep_title = {0: 'Import of the ASDM', 1: 'Fix of SYSCAL table times',\n"
            "              2: 'listobs', 3: 'A priori flagging', 4: 'Bandpass calibration',\n"
            "              5: 'Gain calibration', 6: 'Application of the calibrations', 7: 'Split'}\n"
            "# dropbox-agent fixture: a stand-in; the pipeline cannot restore a manually calibrated MOUS.\n"
            % oussid)


def casa_log_text(m):
    lines = [("2024-03-07 12:00:01", "INFO", "::casa", "CASA Version %s" % ORIGINAL_CASA),
             ("2024-03-07 12:00:02", "INFO", "::casa", "Pipeline version %s running recipe %s"
              % (ORIGINAL_PIPELINE, RECIPE)),
             ("2024-03-07 12:00:03", "INFO", "executeppr::::casa", "Processing MOUS %s" % m["mous"]),
             ("2024-03-07 12:41:10", "INFO", "hifa_exportdata::::casa", "Exported calibration products of %s"
              % sanitize(m["mous"])),
             ("2024-03-07 12:41:12", "INFO", "executeppr::::casa", "Terminating procedure execution ...")]
    return "".join("%s\t%s\t%s\t%s\n" % ln for ln in lines)


def qa2_report(m):
    return ("<!DOCTYPE html>\n<html><head><title>QA2 report %s</title></head><body>\n"
            "<h1>QA2 report for %s (%s)</h1>\n<p>QA2 status: Pass. Calibrated by the pipeline (%s, CASA %s).</p>\n"
            "<p>dropbox-agent fixture: placeholder report.</p>\n</body></html>\n"
            % (m["mous"], m["mous"], PROJECT, ORIGINAL_PIPELINE, ORIGINAL_CASA))


def package_readme(m, names):
    mp = member_path(m).split("/")
    title = "ALMA data delivery: project %s, member ObsUnitSet %s" % (PROJECT, m["mous"])
    return ("%s\n%s\n\n"
            "Science goal %s, group %s, member %s.\n\n"
            "This delivery consists of:\n"
            "  %s  calibration, scripts, logs and QA reports\n"
            "  %s  the archived science products (images)\n"
            "%s"
            "  %s  this file\n\n"
            "Untarring every tar (for t in *.tar; do tar xf $t; done) gives:\n"
            "%s/\n"
            "  %s/\n"
            "    %s/\n"
            "      %s/\n"
            "        calibration/  calibration tables, flag versions, apply files, pipeline manifest\n"
            "        log/          processing logs\n"
            "        product/      science images (FITS)\n"
            "        qa/           quality assessment (QA2) report\n"
            "        raw/          the raw data (ASDMs, uid___*.asdm.sdm)\n"
            "        script/       scripts that regenerate the calibrated data (scriptForPI.py)\n\n"
            "To regenerate the calibrated measurement sets: untar the auxiliary and the asdm.sdm tars, then\n"
            "  cd %s/script\n"
            "  casa --pipeline -c member.%s.scriptForPI.py\n"
            "using the CASA version named in the QA2 report (here CASA %s with pipeline %s) or a later one.\n\n"
            "Synthetic data made by dropbox-agent's casa/make_fixture.py; not ALMA observations.\n"
            % (title, "=" * len(title), SOUS, GOUS, m["mous"], names["aux"], names["product"],
               "".join("  %s  raw data of one execution block\n" % r for r in names["raw"]),
               names["readme"], mp[0], mp[1], mp[2], mp[3], "/".join(mp), sanitize(m["mous"]),
               ORIGINAL_CASA, ORIGINAL_PIPELINE))


def _put(root, rel, data=None, src=None):
    path = os.path.join(root, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if src is not None:
        shutil.copyfile(src, path)
    else:
        with open(path, "w" if isinstance(data, str) else "wb") as f:
            f.write(data)


def _package_tar(out_path, stage, files):
    """A package tar whose members are <member path>/<rel> for {rel (under the member dir): (data, src)}."""
    if os.path.exists(stage):
        shutil.rmtree(stage)
    for rel, (data, src) in files.items():
        _put(stage, rel, data, src)
    tar_deterministic(out_path, stage, [PROJECT], compress=False, normalize_modes=True)
    shutil.rmtree(stage)


def _raw_tar(out_path, stage, m, disk, store):
    """<project>_uid___<EB>.asdm.sdm.tar: the store's ASDM re-rooted at <member>/raw/<disk>.asdm.sdm/."""
    if os.path.exists(stage):
        shutil.rmtree(stage)
    raw = os.path.join(stage, member_path(m), "raw")
    os.makedirs(raw)
    with tarfile.open(os.path.join(store, disk + ".asdm.sdm.tar.gz")) as tf:
        tf.extractall(raw, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
    os.rename(os.path.join(raw, disk), os.path.join(raw, disk + ".asdm.sdm"))
    tar_deterministic(out_path, stage, [PROJECT], compress=False, normalize_modes=True)
    shutil.rmtree(stage)


def write_package(pkgdir, stage, store, m, pass_ebs, naming="member", kind="pipeline"):
    """One package directory for MOUS m. naming: "member" or "compact"; kind: "pipeline" (calibration products),
    "manual" (scriptForCalibration, no pipeline products) or "semipass" (qa/ and scriptForPI.py only)."""
    oussid = sanitize(m["mous"])
    mp = member_path(m)
    names = package_tar_names(m, pass_ebs)
    os.makedirs(pkgdir)
    aux = {}
    cal, scr = mp + "/calibration/", mp + "/script/"
    aux[scr + "member.%s.scriptForPI.py" % oussid] = (script_for_pi(oussid), None)
    aux[mp + "/qa/member.%s.qa2_report.html" % oussid] = (qa2_report(m), None)
    if kind != "semipass":
        aux[mp + "/log/member.%s.%s" % (oussid, CAL_LOG_NAME)] = (casa_log_text(m), None)
    if kind == "manual":
        aux[scr + "member.%s.scriptForCalibration.py" % oussid] = (script_for_calibration(oussid), None)
        for eb in pass_ebs:
            disk = sanitize(eb_uid(eb, m))
            aux[cal + "%s.ms.split.fluxscale" % disk] = (
                "Flux density for %s in SpW=0 (freq=1.0e+11 Hz) is: 0.500 +/- 0.010 (SNR = 50.0, N = 30)\n"
                % FIELDS[1]["name"], None)
    elif kind == "pipeline":
        for n in sorted(SESSIONS):
            src = os.path.join(store, "%s.session_%d.caltables.tgz" % (oussid, n))
            if os.path.exists(src):
                new = ("member.%s.s%d.caltables.tgz" if naming == "compact" else "member.%s.session_%d.caltables.tgz")
                aux[cal + new % (oussid, n)] = (None, src)
        for eb in pass_ebs:
            vis = sanitize(eb_uid(eb, m)) + ".ms"
            for suffix in (".flagversions.tgz", ".calapply.txt"):
                aux[cal + vis + suffix] = (None, os.path.join(store, vis + suffix))
        manifest = ("member.%s.%s.calimage.pipeline_manifest.xml" if naming == "compact"
                    else "member.%s.%s.pipeline_manifest.xml")
        aux[cal + manifest % (oussid, RECIPE)] = (None, os.path.join(store, "%s.%s.pipeline_manifest.xml"
                                                                      % (oussid, RECIPE)))
        aux[cal + "member.%s.%s.auxproducts.tgz" % (oussid, RECIPE)] = (
            None, os.path.join(store, "%s.%s.auxproducts.tgz" % (oussid, RECIPE)))
        aux[scr + "member.%s.%s.casa_piperestorescript.py" % (oussid, RECIPE)] = (
            None, os.path.join(store, "%s.%s.casa_piperestorescript.py" % (oussid, RECIPE)))
        if naming == "member":
            aux[scr + "member.%s.%s.pprequest.xml" % (oussid, RECIPE)] = (calibration_ppr(m, pass_ebs), None)
    _package_tar(os.path.join(pkgdir, names["aux"]), stage, aux)
    raw_tars = []
    if kind != "semipass":
        image = "%s.s12_0.Demo_target_sci.spw0_1.cont.I.pbcor.fits" % oussid
        _package_tar(os.path.join(pkgdir, names["product"]), stage,
                     {mp + "/product/member." + image: (None, os.path.join(store, image))})
        for eb, tar_name in zip(pass_ebs, names["raw"]):
            _raw_tar(os.path.join(pkgdir, tar_name), stage, m, sanitize(eb_uid(eb, m)), store)
            raw_tars.append(tar_name)
    with open(os.path.join(pkgdir, names["readme"]), "w") as f:
        f.write(package_readme(m, dict(names, raw=raw_tars)))
    return {"auxTar": names["aux"], "productTar": None if kind == "semipass" else names["product"],
            "rawTars": raw_tars, "readme": names["readme"]}


def untar_package(src, dst):
    """The package as a user following the README has it: every tar untarred in place, the tars removed."""
    os.makedirs(dst)
    for name in sorted(os.listdir(src)):
        path = os.path.join(src, name)
        if name.endswith(".tar"):
            with tarfile.open(path) as tf:
                tf.extractall(dst, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
        else:
            shutil.copy2(path, os.path.join(dst, name))


def write_packages(outdir, store, stage):
    """OUTDIR/packages/<variant>/ and the fixture.json "packages" summary (relative directories)."""
    pkgroot = os.path.join(outdir, "packages")
    if os.path.exists(pkgroot):
        shutil.rmtree(pkgroot)
    os.makedirs(pkgroot)
    pass_ebs = [eb for eb in EXEC_BLOCKS if eb["qa0"] == "Pass"]
    mous_a, mous_b = MOUSES[:2]
    variants = {}

    def record(variant, m, info, naming, restorable, error=None, **extra):
        d = {"directory": "packages/" + variant, "mous": m["mous"], "project": PROJECT, "sous": SOUS, "gous": GOUS,
             "memberPath": member_path(m), "naming": naming, "untarred": False}
        d.update(info)
        d["asdmDirs"] = ["raw/%s.asdm.sdm" % sanitize(eb_uid(eb, m)) for eb in pass_ebs] if info["rawTars"] else []
        d.update({"restorable": restorable, "expectedError": error})
        d.update(extra)
        pkgdir = os.path.join(outdir, d["directory"])
        d["files"] = {n: os.path.getsize(os.path.join(pkgdir, n)) for n in sorted(os.listdir(pkgdir))
                      if os.path.isfile(os.path.join(pkgdir, n))}
        variants[variant] = d

    p = lambda v: os.path.join(pkgroot, v)  # noqa: E731
    info = write_package(p("member"), stage, store, mous_a, pass_ebs, "member")
    record("member", mous_a, info, "member", True)
    record("compact", mous_a, write_package(p("compact"), stage, store, mous_a, pass_ebs, "compact"), "compact", True)
    untar_package(p("member"), p("untarred"))
    record("untarred", mous_a, dict(info), "member", True, untarred=True, untarredFrom="packages/member")
    record("manual-cal", mous_a, write_package(p("manual-cal"), stage, store, mous_a, pass_ebs, "member", "manual"),
           "member", False, "manuallyCalibrated")
    record("semipass", mous_a, write_package(p("semipass"), stage, store, mous_a, pass_ebs, "member", "semipass"),
           "member", False, "notRestorable")
    shutil.copytree(p("member"), p("truncated"))
    cut = info["rawTars"][0]
    full = os.path.getsize(os.path.join(p("truncated"), cut))
    with open(os.path.join(p("truncated"), cut), "r+b") as f:
        f.truncate(int(full * 0.6))
    record("truncated", mous_a, dict(info), "member", False, "truncated", truncatedTar=cut, fullSize=full,
           truncatedSize=int(full * 0.6))
    b_drop = "session_%d" % mous_b["drop_caltables_for"]
    record("mous-b", mous_b, write_package(p("mous-b"), stage, store, mous_b, pass_ebs, "member"), "member", False,
           "manifestMissingSession", expectedFailure="manifest has no caltables for %s" % b_drop)
    for v in ("untarred",):
        variants[v].update({"auxTar": None, "productTar": None, "rawTars": [],
                            "untarredTars": [info["auxTar"], info["productTar"]] + info["rawTars"]})
    return {"root": "packages", "variants": variants}


def build(outdir):
    t_start = time.time()
    outdir = os.path.abspath(outdir)
    store = os.path.join(outdir, "store")
    refdir = os.path.join(outdir, "reference")
    work = os.path.join(outdir, "work")
    for d in (store, refdir, work):
        if os.path.exists(d):
            shutil.rmtree(d)
        os.makedirs(d)
    env, home = casa_env()
    runner = Runner(env, os.path.join(work, "casa-fixture.log"), work)
    pass_ebs = [eb for eb in EXEC_BLOCKS if eb["qa0"] == "Pass"]
    mous_a = MOUSES[0]

    def one_eb(eb):
        disk = sanitize(eb["uid"])
        vis = disk + ".ms"
        ebwork = os.path.join(work, disk)
        os.makedirs(ebwork)
        asdm = os.path.join(ebwork, disk)
        runner.stage("synth", {"work": ebwork, "asdm": asdm, "rangeid": eb["rangeid"], "seed": eb["seed"],
                               "ref": eb["ref"], "created": eb["start"].replace("Z", ".000000000")}, disk)
        calw = os.path.join(ebwork, "cal")
        os.makedirs(calw)
        msp = os.path.join(calw, vis)
        runner.step("importasdm", {"asdm": asdm, "vis": msp}, disk)
        runner.stage("solve", {"vis": msp, "flag": eb["flag"]}, disk)
        text = calapply_text(vis, mous_a["mous"])
        calls = calapply.prepare_file(text, msp, calw)
        runner.step("applycal", {"vis": msp, "calls": calls}, disk)
        runner.stage("save_flags", {"vis": msp}, disk)
        return disk

    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        disks = list(pool.map(one_eb, pass_ebs))

    # ---- per-EB store files: ASDM tarball, flagversions, calapply; reference MS
    for eb, disk in zip(pass_ebs, disks):
        ebwork = os.path.join(work, disk)
        calw = os.path.join(ebwork, "cal")
        vis = disk + ".ms"
        tar_deterministic(os.path.join(store, disk + ".asdm.sdm.tar.gz"), ebwork, [disk])
        fvdir = os.path.join(calw, "fvexport", vis + ".flagversions")
        os.makedirs(fvdir)
        shutil.copytree(os.path.join(calw, vis + ".flagversions", "flags." + casa_steps.FINAL_FLAG_VERSION),
                        os.path.join(fvdir, "flags." + casa_steps.FINAL_FLAG_VERSION))
        with open(os.path.join(fvdir, "FLAG_VERSION_LIST"), "w") as f:
            f.write("%s : %s\n" % (casa_steps.FINAL_FLAG_VERSION, casa_steps.FINAL_FLAG_COMMENT))
        tar_deterministic(os.path.join(store, vis + ".flagversions.tgz"), os.path.join(calw, "fvexport"),
                          [vis + ".flagversions"])
        with open(os.path.join(store, vis + ".calapply.txt"), "w") as f:
            f.write(calapply_text(vis, mous_a["mous"]))
        shutil.copytree(os.path.join(calw, vis), os.path.join(refdir, vis), symlinks=True)

    # ---- per-MOUS products, catalogue
    catalog = {"schema": "dropbox-agent/catalog/v1", "mouses": []}
    summary = {"generatorVersion": GENERATOR_VERSION, "generatorHash": generator_hash(), "mouses": [],
               "execBlocks": [], "store": "store", "reference": "reference"}
    for eb in EXEC_BLOCKS:
        d = {"uid": eb["uid"], "qa0": eb["qa0"], "session": "session_%d" % eb["session"],
             "start": eb["start"], "end": eb.get("end") or eb_end_iso(eb)}
        if eb["qa0"] == "Pass":
            d["asdmDiskName"] = sanitize(eb["uid"])
            d["asdmFileId"] = d["asdmDiskName"] + ".asdm.sdm.tar.gz"
            d["referenceMs"] = "reference/%s.ms" % d["asdmDiskName"]
        summary["execBlocks"].append(d)
    for m in MOUSES:
        oussid = sanitize(m["mous"])
        sessions = []  # (session name, [disk names]) of Pass EBs
        origin = {}  # this MOUS's disk name -> the disk whose data it carries
        for eb, disk in zip(pass_ebs, disks):
            mdisks = [sanitize(eb_uid(eb, m, serial)) for serial in eb_serials(m)]
            for mdisk in mdisks:
                if mdisk != disk:
                    # Same data under this MOUS's own EB: ASDM, flag versions and apply file renamed.
                    tmpd = os.path.join(work, "rename-" + mdisk)
                    os.makedirs(tmpd)
                    shutil.copytree(os.path.join(work, disk, disk), os.path.join(tmpd, mdisk), symlinks=True)
                    tar_deterministic(os.path.join(store, mdisk + ".asdm.sdm.tar.gz"), tmpd, [mdisk])
                    shutil.copytree(os.path.join(work, disk, "cal", "fvexport", disk + ".ms.flagversions"),
                                    os.path.join(tmpd, mdisk + ".ms.flagversions"))
                    tar_deterministic(os.path.join(store, mdisk + ".ms.flagversions.tgz"), tmpd, [mdisk + ".ms.flagversions"])
                    with open(os.path.join(store, mdisk + ".ms.calapply.txt"), "w") as f:
                        f.write(calapply_text(mdisk + ".ms", m["mous"]))
                origin[mdisk] = disk
            sessions.append(("session_%d" % eb["session"], mdisks))
        drop = "session_%d" % m["drop_caltables_for"] if m["drop_caltables_for"] else None
        products = []
        for sname, sdisks in sessions:
            if sname == drop:
                continue
            name = "%s.%s.caltables.tgz" % (oussid, sname)
            tabs = []
            if sdisks == [origin[sdisks[0]]]:
                calw = os.path.join(work, sdisks[0], "cal")  # the EB's own tables, where they were made
                tabs = list(table_names(sdisks[0] + ".ms").values())
            else:
                # Tables named after this MOUS's own MSes, with the data of the ones they were copied from.
                calw = os.path.join(work, "caltables-%s-%s" % (m["key"], sname))
                os.makedirs(calw)
                for disk in sdisks:
                    own, src = table_names(disk + ".ms"), table_names(origin[disk] + ".ms")
                    for k in own:
                        shutil.copytree(os.path.join(work, origin[disk], "cal", src[k]), os.path.join(calw, own[k]))
                    tabs += list(own.values())
            tar_deterministic(os.path.join(store, name), calw, tabs)
            products.append((name, "calibration"))
        for sname, sdisks in sessions:
            for disk in sdisks:
                products.append((disk + ".ms.flagversions.tgz", "calibration"))
                products.append((disk + ".ms.calapply.txt", "calibration"))
        aux = "%s.%s.auxproducts.tgz" % (oussid, RECIPE)
        auxdir = os.path.join(work, "aux-" + m["key"])
        os.makedirs(auxdir)
        with open(os.path.join(auxdir, "flux.csv"), "w") as f:
            f.write("ms,field,spw,I,Q,U,V,spix,uvmin,uvmax,comment\n")
            for eb in pass_ebs:
                for serial in eb_serials(m):
                    for spw in (0, 1):
                        f.write("%s.ms,0,%d,1.000,0.0,0.0,0.0,0.0,0.0,0.0,\"# J1625-2527 intent=AMPLITUDE,BANDPASS\"\n"
                                % (sanitize(eb_uid(eb, m, serial)), spw))
        with open(os.path.join(auxdir, "antennapos.csv"), "w") as f:
            f.write("name,antenna,xoff,yoff,zoff,comment\n")
        with open(os.path.join(auxdir, "cont.dat"), "w") as f:
            f.write("Field: Demo_target\n\nSpectralWindow: 0\n100.05~100.20GHz LSRK\n\n"
                    "SpectralWindow: 1\n102.05~102.20GHz LSRK\n")
        tar_deterministic(os.path.join(store, aux), auxdir, ["antennapos.csv", "cont.dat", "flux.csv"])
        products.append((aux, "auxiliary"))
        restore_name = "%s.%s.casa_piperestorescript.py" % (oussid, RECIPE)
        with open(os.path.join(store, restore_name), "w") as f:
            f.write(restore_script(oussid, [d for _, ds in sessions for d in ds], [s for s, _ in sessions]))
        products.append((restore_name, "script"))
        image = "%s.s12_0.Demo_target_sci.spw0_1.cont.I.pbcor.fits" % oussid
        write_fits(os.path.join(store, image), seed=len(m["key"]) + ord(m["key"]))
        products.append((image, "science"))
        manifest = "%s.%s.pipeline_manifest.xml" % (oussid, RECIPE)
        with open(os.path.join(store, manifest), "w") as f:
            f.write(manifest_xml(oussid, sessions, aux, restore_name, image, drop))
        products.append((manifest, "calibration"))

        sess_rows = [{"id": "%s#S%d" % (m["mous"], n), "startTime": SESSIONS[n][0], "endTime": SESSIONS[n][1]}
                     for n in sorted(SESSIONS)]
        eb_rows = []
        for eb in EXEC_BLOCKS:
            for serial in eb_serials(m) if eb["qa0"] == "Pass" else eb_serials(m)[:1]:
                row = {"uid": eb_uid(eb, m, serial), "qa0": eb["qa0"], "sessionId": "%s#S%d" % (m["mous"], eb["session"]),
                       "startTime": eb["start"], "endTime": eb.get("end") or eb_end_iso(eb)}
                if eb["qa0"] == "Pass":
                    row["asdm"] = file_entry(store, sanitize(eb_uid(eb, m, serial)) + ".asdm.sdm.tar.gz")
                eb_rows.append(row)
        catalog["mouses"].append({
            "mous": m["mous"], "project": PROJECT, "obsProject": OBS_PROJECT, "projectStatus": PROJECT_STATUS,
            "obsUnitSetPartId": m["partId"], "sous": SOUS, "gous": GOUS, "title": m["title"],
            "releaseDate": "2024-09-01T00:00:00Z", "schedBlock": m["sb"], "sessions": sess_rows,
            "execBlocks": eb_rows,
            "products": [file_entry(store, n, c) for n, c in sorted(products)],
            "ousStatusXml": None,
        })
        summary["mouses"].append({
            "key": m["key"], "mous": m["mous"], "oussid": oussid, "manifest": manifest,
            "restorable": drop is None,
            "expectedFailure": None if drop is None else "manifest has no caltables for %s" % drop,
            "sessions": {s: d for s, d in sessions},
            # Each MS's reference: the EB whose data it carries (reference/<origin>.ms).
            "referenceOf": {d: origin[d] for _, ds in sessions for d in ds},
        })
    t_pkg = time.time()
    summary["packages"] = write_packages(outdir, store, os.path.join(work, "package-stage"))
    runner.timings["packages"] = round(time.time() - t_pkg, 2)
    with open(os.path.join(outdir, "catalog.json"), "w") as f:
        json.dump(catalog, f, indent=2)
        f.write("\n")
    summary["timings"] = dict(runner.timings, total=round(time.time() - t_start, 2))
    with open(os.path.join(outdir, "fixture.json"), "w") as f:
        json.dump(summary, f, indent=2)
        f.write("\n")
    if os.environ.get("DROPBOX_FIXTURE_KEEP_WORK") != "1":
        shutil.rmtree(work)
    shutil.rmtree(home, ignore_errors=True)
    return summary


def main(argv):
    if len(argv) >= 1 and argv[0] == "--stage":
        return casa_steps.step_main(argv[1:], STAGES)
    if len(argv) != 1 or argv[0].startswith("-"):
        print("usage: make_fixture.py OUTDIR", file=sys.stderr)
        return 2
    try:
        summary = build(argv[0])
    except Exception as e:
        print("make_fixture: %s" % e, file=sys.stderr)
        return 1
    print(json.dumps({"ok": True, "total_s": summary["timings"]["total"],
                      "mouses": [m["mous"] for m in summary["mouses"]]}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
