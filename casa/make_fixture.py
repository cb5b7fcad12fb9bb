#!/usr/bin/env python3
"""Synthesize a small ALMA-like MOUS fixture: ASDMs, pipeline-named calibration products, catalogue, references.

Usage (with the CASA venv's python):  make_fixture.py OUTDIR

Writes OUTDIR/store/<fileId> (the archive store, flat), OUTDIR/catalog.json (catalogue import format,
schema dropbox-agent/catalog/v1), OUTDIR/reference/<AsdmDiskName>.ms (calibrated reference MSes) and
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
]


def eb_uid(eb, m):
    """The EB uid of `eb` in MOUS `m`. In ALMA an EB belongs to one SB and so to one MOUS; MOUS B gets its own EBs
    (same data, serial X2 instead of X1), repacked under their own AsdmDiskNames."""
    serial = m.get("eb_serial")
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
    for i, f0 in enumerate(("100GHz", "102GHz")):
        sm.setspwindow(spwname="SPW%d" % i, freq=f0, deltafreq="15.625MHz", freqresolution="15.625MHz",
                       nchannels=16, stokes="XX YY")
    sm.setfeed(mode="perfect X Y")
    for f in FIELDS:
        sm.setfield(sourcename=f["name"], sourcedirection=me.direction("J2000", f["ra"], f["dec"]))
    sm.setlimits(shadowlimit=0.001, elevationlimit="8.0deg")
    sm.setauto(autocorrwt=0.0)
    sm.settimes(integrationtime="6.048s", usehourangle=False, referencetime=me.epoch("UTC", a["ref"]))
    for fi, t0, t1 in SCANS:
        mode = ",".join("%s#ON_SOURCE" % i for i in FIELDS[fi]["intents"])
        for spw in ("SPW0", "SPW1"):
            sm.observe(sourcename=FIELDS[fi]["name"], spwname=spw, starttime="%ds" % t0, stoptime="%ds" % t1,
                       state_obs_mode=mode, project=PROJECT, observer="demo")

    # Sky model computed directly (point sources; the target 1 arcsec off centre). sm.predict with one
    # component list would put every source into every field, which is not what a calibrator looks like.
    c_light = 299792458.0
    tb.open(ms + "/SPECTRAL_WINDOW")
    chan_freq = [tb.getcell("CHAN_FREQ", i) for i in range(tb.nrows())]
    tb.close()
    tb.open(ms, nomodify=False)
    uvw, fid, ddid = tb.getcol("UVW"), tb.getcol("FIELD_ID"), tb.getcol("DATA_DESC_ID")
    shape = tb.getcol("DATA").shape
    model = np.zeros(shape, dtype=complex)
    for i, f in enumerate(FIELDS):
        off = qa.convert(qa.quantity(f["offset"]), "rad")["value"] if f["offset"] else 0.0
        l, m = off * np.sin(np.pi / 4), off * np.cos(np.pi / 4)
        for s in range(len(chan_freq)):
            rows = (fid == i) & (ddid == s)
            lam = c_light / np.asarray(chan_freq[s])
            ph = 2 * np.pi * (uvw[0, rows][None, :] * l + uvw[1, rows][None, :] * m) / lam[:, None]
            model[:, :, rows] = f["flux"] * np.exp(-1j * ph)[None, :, :]
    tb.putcol("DATA", model)
    tb.close()

    # Corrupt: smooth antenna gains and bandpasses plus seeded noise, written into DATA.
    rng = np.random.default_rng(a["seed"])
    tb.open(ms, nomodify=False)
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
    tb.putcol("DATA", d * (g1 * np.conj(g2))[:, None, :] * b1 * np.conj(b2) + noise)
    tb.putcol("SCAN_NUMBER", (tb.getcol("SCAN_NUMBER") + 1) // 2)
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
    asdm_fixups.name_spws(asdm)
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
    casatasks.flagdata(vis=vis, mode="manual", spw="*:0;15", flagbackup=False)
    casatasks.flagdata(vis=vis, mode="manual", antenna=a["flag"]["antenna"], scan=a["flag"]["scan"],
                       flagbackup=False)
    casatasks.bandpass(vis=vis, caltable=t["bcal"], field=bp, solint="inf", combine="scan", refant=REFANT,
                       solnorm=True, bandtype="B", minsnr=3.0)
    casatasks.gaincal(vis=vis, caltable=t["gpint"], field="%s,%s" % (bp, ph), solint="int", calmode="p",
                      refant=REFANT, gaintype="G", gaintable=[t["bcal"]], minsnr=3.0)
    casatasks.gaincal(vis=vis, caltable=t["gpinf"], field=ph, solint="inf", calmode="p", refant=REFANT,
                      gaintype="G", gaintable=[t["bcal"]], minsnr=3.0)
    casatasks.gaincal(vis=vis, caltable=t["gacal"], field=bp, solint="inf", calmode="a",
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


def tar_deterministic(out_path, base_dir, names, arc_prefix=""):
    """gzip'd tar of base_dir/<name> trees with sorted entries, fixed owner and mtime, gzip mtime 0."""
    import gzip
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        def add(path, arc):
            ti = tf.gettarinfo(path, arc)
            ti.uid = ti.gid = 0
            ti.uname = ti.gname = "root"
            ti.mtime = 1709900000
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
            mdisk = sanitize(eb_uid(eb, m))
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
            sessions.append(("session_%d" % eb["session"], [mdisk]))
            origin[mdisk] = disk
        drop = "session_%d" % m["drop_caltables_for"] if m["drop_caltables_for"] else None
        products = []
        for sname, sdisks in sessions:
            if sname == drop:
                continue
            name = "%s.%s.caltables.tgz" % (oussid, sname)
            tabs = []
            calw = os.path.join(work, origin[sdisks[0]], "cal")
            for disk in sdisks:
                own, src = table_names(disk + ".ms"), table_names(origin[disk] + ".ms")
                if disk != origin[disk]:
                    # Tables named after this MOUS's own MS, with the data of the one they were copied from.
                    calw = os.path.join(work, "rename-" + disk)
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
                for spw in (0, 1):
                    f.write("%s.ms,0,%d,1.000,0.0,0.0,0.0,0.0,0.0,0.0,\"# J1625-2527 intent=AMPLITUDE,BANDPASS\"\n"
                            % (sanitize(eb_uid(eb, m)), spw))
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
            row = {"uid": eb_uid(eb, m), "qa0": eb["qa0"], "sessionId": "%s#S%d" % (m["mous"], eb["session"]),
                   "startTime": eb["start"], "endTime": eb.get("end") or eb_end_iso(eb)}
            if eb["qa0"] == "Pass":
                row["asdm"] = file_entry(store, sanitize(eb_uid(eb, m)) + ".asdm.sdm.tar.gz")
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
        })
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
