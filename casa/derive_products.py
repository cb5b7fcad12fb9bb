"""Derived products and quick-look plots of restored measurement sets, with the modular CASA (casatools,
casatasks, matplotlib with the Agg backend). Run by the agent in step 6, never through a shell:

    python3 derive_products.py SPEC.json REPORT.json

SPEC: {"ebs": [{"ms": "/abs/uid___X.ms"}], "content": ["science", "targets", "contsub"],
       "average": {"time": "30s", "channels": 4} | null, "contdat": "/abs/cont.dat" | null,
       "outputDirectory": "/abs/dir", "plotDirectory": "/abs/dir" | null}

What it makes per execution block, as scriptForPI and the pipeline do:
- science: science spectral windows (intent OBSERVE_TARGET, more than 4 channels, not WVR/SQLD/channel-average),
  all fields, corrected data -> DATA: <eb>.ms.split.cal (scriptForPI's DOSPLIT).
- targets: the same for the science targets only: <eb>.ms.split.cal.source.
- contsub: science targets, science spws, continuum fitted on the cont.dat line-free ranges (LSRK, converted to the
  MS's channels per field) and subtracted with uvcontsub (fitorder 1, as hif_uvcontsub): <eb>_targets_line.ms.
- average (optional): mstransform time and channel averaging of these products.
Each product is checked with casatools against the restored MS (columns, spws and their channels, fields, row
counts) before it is reported; any difference fails the run (exit 1) naming the product.
Plots (PNG): amplitude vs uv distance per field, amplitude and phase vs time of the calibrators, per EB.
REPORT: {"products": [{"name", "kind", "eb", "spws", "fields", "rows", "channels"}], "plots": ["plots/…png"],
         "casa": "<casatools version>"}
"""
import json
import math
import os
import re
import shutil
import sys
import traceback

from ms_contents import contents

NON_SCIENCE = re.compile(r"(WVR|SQLD|CH_AVG|#CH_AVG)", re.I)
CALIBRATOR_INTENTS = ("CALIBRATE_BANDPASS", "CALIBRATE_PHASE", "CALIBRATE_FLUX", "CALIBRATE_AMPLI", "CALIBRATE_POLARIZATION",
                      "CALIBRATE_DELAY", "OBSERVE_CHECK_SOURCE")


def fail(message):
    raise RuntimeError(message)


STEPS = {"done": 0, "total": 1}


def progress(text):
    """`PROGRESS <done> <total> <text>`, the line the agent's CASA runner passes on."""
    print("PROGRESS %d %d %s" % (STEPS["done"], STEPS["total"], text), flush=True)
    STEPS["done"] += 1


def describe(ms):
    """Science spws, science targets, calibrators and row selections of a restored MS."""
    from casatools import msmetadata
    md = msmetadata()
    md.open(ms)
    try:
        intents = md.intents()
        target_intents = [i for i in intents if i.startswith("OBSERVE_TARGET")]
        if not target_intents:
            fail("%s has no OBSERVE_TARGET intent: there is no science target to deliver" % os.path.basename(ms))
        science_spws = sorted({int(s) for i in target_intents for s in md.spwsforintent(i)})
        science_spws = [s for s in science_spws if md.nchan(s) > 4 and not NON_SCIENCE.search(" ".join(md.namesforspws(s)))]
        if not science_spws:
            fail("%s has no science spectral window (OBSERVE_TARGET with more than 4 channels)" % os.path.basename(ms))
        targets = sorted({int(f) for i in target_intents for f in md.fieldsforintent(i)})
        calibrators = sorted({int(f) for i in intents if i.startswith(CALIBRATOR_INTENTS) for f in md.fieldsforintent(i)})
        names = md.fieldnames()
        states = target_states(ms)
        return {
            "scienceSpws": science_spws, "nchan": {s: md.nchan(s) for s in range(md.nspw())},
            "targets": targets, "calibrators": calibrators, "fieldNames": names, "targetStates": states,
            "ddi": {s: int(md.datadescids(spw=s)[0]) for s in science_spws},
        }
    finally:
        md.close()


def target_states(ms):
    from casatools import table
    t = table()
    t.open(os.path.join(ms, "STATE"))
    try:
        modes = t.getcol("OBS_MODE") if t.nrows() else []
    finally:
        t.close()
    return [i for i, m in enumerate(modes) if "OBSERVE_TARGET" in m]


def expected_rows(ms, ddis, fields=None, states=None):
    from casatools import table
    t = table()
    t.open(ms)
    try:
        q = "DATA_DESC_ID IN [%s]" % ",".join(str(d) for d in ddis)
        if fields is not None:
            q += " && FIELD_ID IN [%s]" % ",".join(str(f) for f in fields)
        if states is not None:
            q += " && STATE_ID IN [%s]" % ",".join(str(s) for s in states)
        sel = t.query(q)
        n = sel.nrows()
        sel.close()
        return n
    finally:
        t.close()


def seconds(text):
    m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*s\s*", text or "")
    if not m or float(m.group(1)) <= 0:
        fail("average.time must be a positive number of seconds such as \"30s\", not %r" % text)
    return float(m.group(1))


def average_args(average, info):
    if not average:
        return {}
    args = {}
    if average.get("time"):
        args.update(timeaverage=True, timebin="%gs" % seconds(average["time"]))
    if average.get("channels"):
        width = int(average["channels"])
        narrowest = min(info["nchan"][s] for s in info["scienceSpws"])
        if width < 2 or width > narrowest:
            fail("average.channels %d does not fit: the narrowest science spectral window has %d channels" % (width, narrowest))
        args.update(chanaverage=True, chanbin=width)
    return args


def contdat_ranges(path):
    """cont.dat as {field name: {spw id: [(lo Hz, hi Hz, frame)]}}."""
    ranges, field, spw = {}, None, None
    units = {"GHZ": 1e9, "MHZ": 1e6, "KHZ": 1e3, "HZ": 1.0}
    with open(path) as f:
        for raw in f:
            line = raw.strip()
            if not line:
                continue
            if line.startswith("Field:"):
                field, spw = line.split(":", 1)[1].strip(), None
                ranges.setdefault(field, {})
            elif line.startswith("SpectralWindow:"):
                spw = int(line.split(":", 1)[1].split()[0])
                ranges.setdefault(field, {}).setdefault(spw, [])
            elif field is not None and spw is not None:
                m = re.match(r"([0-9.]+)~([0-9.]+)\s*([A-Za-z]+)\s*(\w+)?", line)
                if m:
                    scale = units.get(m.group(3).upper())
                    if scale is None:
                        fail("cont.dat: unknown unit in %r" % line)
                    ranges[field][spw].append((float(m.group(1)) * scale, float(m.group(2)) * scale, (m.group(4) or "LSRK").upper()))
    return ranges


def channel_ranges(ms, spw, field_id, freq_ranges):
    """The channels of `spw` whose frequency in the cont.dat frame (per field and time) falls in a range."""
    from casatools import ms as mstool
    m = mstool()
    m.open(ms)
    try:
        m.selectinit(datadescid=0, reset=True)
        frame = freq_ranges[0][2] if freq_ranges else "LSRK"
        freqs = m.cvelfreqs(spwids=[spw], fieldids=[field_id], mode="channel", outframe=frame)
    finally:
        m.close()
    chans = [i for i, f in enumerate(freqs) if any(lo <= f <= hi for lo, hi, _ in freq_ranges)]
    if not chans:
        return None
    runs, start, prev = [], chans[0], chans[0]
    for c in chans[1:] + [None]:
        if c is not None and c == prev + 1:
            prev = c
            continue
        runs.append("%d~%d" % (start, prev))
        if c is not None:
            start = prev = c
    return ";".join(runs)


def check(product, vis, info, fields, states, average):
    """The product against the restored MS, with casatools."""
    got = contents(product)
    name = os.path.basename(product)
    columns, rows = got["columns"], got["rows"]
    chans = {s: v["channels"] for s, v in got["spws"].items()}
    present_fields = sorted(got["fields"])
    if "DATA" not in columns:
        fail("%s has no DATA column" % name)
    if "CORRECTED_DATA" in columns:
        fail("%s still has a CORRECTED_DATA column (the calibrated data must be in DATA)" % name)
    expected_fields = sorted(info["fieldNames"][f] for f in (fields if fields is not None else range(len(info["fieldNames"]))))
    if present_fields != expected_fields:
        fail("%s holds fields %s, expected %s" % (name, present_fields, expected_fields))
    if sorted(got["spws"]) != info["scienceSpws"]:
        fail("%s holds spectral windows %s, expected the science ones %s" % (name, sorted(got["spws"]), info["scienceSpws"]))
    width = int((average or {}).get("channels") or 1)
    for s in info["scienceSpws"]:
        n = info["nchan"][s]
        if chans.get(s) not in (n // width, int(math.ceil(n / width))):
            fail("%s: spectral window %d has %s channels, expected %d/%d" % (name, s, chans.get(s), n, width))
    want = expected_rows(vis, [info["ddi"][s] for s in info["scienceSpws"]], fields, states)
    if (average or {}).get("time"):
        if not 0 < rows <= want:
            fail("%s has %d rows; time averaging must leave between 1 and %d" % (name, rows, want))
    elif rows != want:
        fail("%s has %d rows, the restored MS %d for the same selection" % (name, rows, want))
    return {"rows": rows, "expectedRows": want, "spws": info["scienceSpws"], "fields": present_fields,
            "channels": {str(s): chans[s] for s in info["scienceSpws"]}}


def derive(eb, content, average, contdat, out):
    from casatasks import mstransform, uvcontsub
    vis = eb["ms"]
    base = os.path.basename(vis)
    stem = base[:-3] if base.endswith(".ms") else base
    info = describe(vis)
    spw = ",".join(str(s) for s in info["scienceSpws"])
    avg = average_args(average, info)
    targets = ",".join(str(f) for f in info["targets"])
    made = []

    def transform(output, **kw):
        if os.path.exists(output):
            shutil.rmtree(output)
        mstransform(vis=vis, outputvis=output, datacolumn="corrected", spw=spw, reindex=False, keepflags=True, **kw)
        if not os.path.isdir(output):
            fail("mstransform did not write %s" % os.path.basename(output))

    if "science" in content:
        progress("%s: science spectral windows (split)" % stem)
        output = os.path.join(out, base + ".split.cal")
        transform(output, **avg)
        made.append(dict(name=os.path.basename(output), kind="science", eb=stem, **check(output, vis, info, None, None, average)))
    if "targets" in content:
        progress("%s: science targets (split)" % stem)
        output = os.path.join(out, base + ".split.cal.source")
        transform(output, field=targets, intent="OBSERVE_TARGET*", **avg)
        made.append(dict(name=os.path.basename(output), kind="targets", eb=stem,
                         **check(output, vis, info, info["targets"], info["targetStates"], average)))
    if "contsub" in content:
        if not contdat or not os.path.isfile(contdat):
            fail("continuum subtraction needs the pipeline's cont.dat, which the auxiliary products of this MOUS do not have")
        progress("%s: continuum subtraction (uvcontsub, cont.dat)" % stem)
        ranges = contdat_ranges(contdat)
        temp = os.path.join(out, "." + stem + "_targets.ms")
        transform(temp, field=targets, intent="OBSERVE_TARGET*")
        fitspec = {}
        for f in info["targets"]:
            fname = info["fieldNames"][f]
            per_spw = {}
            for s in info["scienceSpws"]:
                chans = channel_ranges(temp, s, f, ranges.get(fname, {}).get(s, []))
                if chans is None:
                    fail("cont.dat gives no line-free channels for field %s, spectral window %d" % (fname, s))
                per_spw[str(s)] = {"chan": chans, "fitorder": 1}
            fitspec[str(f)] = per_spw
        line = os.path.join(out, stem + "_targets_line.ms")
        line_full = line if not avg else os.path.join(out, "." + stem + "_targets_line_full.ms")
        for p in (line, line_full):
            if os.path.exists(p):
                shutil.rmtree(p)
        uvcontsub(vis=temp, outputvis=line_full, datacolumn="data", fitspec=fitspec, fitorder=1)
        shutil.rmtree(temp, ignore_errors=True)
        if avg:
            mstransform(vis=line_full, outputvis=line, datacolumn="data", reindex=False, keepflags=True, **avg)
            shutil.rmtree(line_full, ignore_errors=True)
        if not os.path.isdir(line):
            fail("uvcontsub did not write %s" % os.path.basename(line))
        made.append(dict(name=os.path.basename(line), kind="contsub", eb=stem, fitspec=fitspec,
                         **check(line, vis, info, info["targets"], info["targetStates"], average)))
    return made, info


def plots(eb_ms, info, directory):
    """amp vs uv distance per field; amp and phase vs time of the calibrators. Returns the file names."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from casatools import table
    stem = os.path.basename(eb_ms)[:-3]
    t = table()
    t.open(eb_ms)
    column = "CORRECTED_DATA" if "CORRECTED_DATA" in t.colnames() else "DATA"
    per_field = {}
    # The science spectral windows only, one data description at a time: a column's cells have one shape per
    # spectral window (a channel-average spw has one channel, a science spw many), so they cannot be read together.
    ddis = [info["ddi"][s] for s in info["scienceSpws"]]
    try:
        for f, name in enumerate(info["fieldNames"]):
            parts = []
            for ddi in ddis:
                sel = t.query("FIELD_ID == %d && DATA_DESC_ID == %d && ANTENNA1 != ANTENNA2" % (f, ddi))
                n = sel.nrows()
                if n == 0:
                    sel.close()
                    continue
                step = max(1, n // max(1, 20000 // len(ddis)))
                data = sel.getcol(column, 0, -1, step)
                flags = sel.getcol("FLAG", 0, -1, step)
                uvw = sel.getcol("UVW", 0, -1, step)
                times = sel.getcol("TIME", 0, -1, step)
                sel.close()
                vis = np.ma.masked_array(data, mask=flags).mean(axis=(0, 1))
                keep = ~np.ma.getmaskarray(vis)
                parts.append((np.hypot(uvw[0], uvw[1])[keep], np.ma.getdata(vis)[keep], times[keep]))
            if not parts:
                continue
            uvdist = np.concatenate([p[0] for p in parts])
            vis = np.concatenate([p[1] for p in parts])
            times = np.concatenate([p[2] for p in parts])
            per_field[name] = {"uvdist": uvdist, "amp": np.abs(vis), "phase": np.degrees(np.angle(vis)),
                               "time": times, "field": f}
    finally:
        t.close()
    # Minutes since the first integration plotted, the same origin for every field.
    start = min((d["time"].min() for d in per_field.values() if len(d["time"])), default=0.0)
    for d in per_field.values():
        d["time"] = (d["time"] - start) / 60.0
    written = []
    if per_field:
        fig, axes = plt.subplots(len(per_field), 1, figsize=(7, 2.6 * len(per_field)), squeeze=False)
        for ax, (name, d) in zip(axes[:, 0], per_field.items()):
            ax.plot(d["uvdist"], d["amp"], ".", markersize=2)
            ax.set_title("%s  %s" % (stem, name), fontsize=9)
            ax.set_xlabel("uv distance (m)")
            ax.set_ylabel("amplitude (Jy)")
        fig.tight_layout()
        path = os.path.join(directory, stem + ".amp_uvdist.png")
        fig.savefig(path, dpi=90)
        plt.close(fig)
        written.append(path)
    cal = [(n, d) for n, d in per_field.items() if d["field"] in info["calibrators"]]
    if cal:
        fig, (amp, phase) = plt.subplots(2, 1, figsize=(7, 5.5), sharex=True)
        for name, d in cal:
            amp.plot(d["time"], d["amp"], ".", markersize=2, label=name)
            phase.plot(d["time"], d["phase"], ".", markersize=2, label=name)
        amp.set_ylabel("amplitude (Jy)")
        phase.set_ylabel("phase (deg)")
        phase.set_xlabel("minutes since the start of the EB")
        amp.set_title("%s  calibrators" % stem, fontsize=9)
        amp.legend(fontsize=7)
        fig.tight_layout()
        path = os.path.join(directory, stem + ".calibrators_amp_phase_time.png")
        fig.savefig(path, dpi=90)
        plt.close(fig)
        written.append(path)
    return written


def main(argv):
    if len(argv) != 3:
        print("usage: derive_products.py SPEC.json REPORT.json", file=sys.stderr)
        return 2
    with open(argv[1]) as f:
        spec = json.load(f)
    import casatools
    report = {"products": [], "plots": [], "casa": casatools.version_string()}
    try:
        content = spec.get("content") or []
        STEPS["total"] = len(spec["ebs"]) * (len(content) + (1 if spec.get("plotDirectory") else 0))
        for eb in spec["ebs"]:
            made, info = derive(eb, content, spec.get("average"), spec.get("contdat"), spec["outputDirectory"]) if content else ([], describe(eb["ms"]))
            report["products"] += made
            if spec.get("plotDirectory"):
                progress("%s: quick-look plots" % os.path.basename(eb["ms"]))
                os.makedirs(spec["plotDirectory"], exist_ok=True)
                report["plots"] += [os.path.basename(p) for p in plots(eb["ms"], info, spec["plotDirectory"])]
    except Exception as exc:  # noqa: BLE001 (reported, then exit 1)
        traceback.print_exc()
        report["error"] = str(exc)
        with open(argv[2], "w") as f:
            json.dump(report, f, indent=1)
        print("DERIVATION FAILED: %s" % exc, file=sys.stderr, flush=True)
        return 1
    with open(argv[2], "w") as f:
        json.dump(report, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
