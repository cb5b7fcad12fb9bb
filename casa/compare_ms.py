#!/usr/bin/env python3
"""Compare a restored MS with a reference MS, or check that an MS is calibrated.

  compare_ms.py MS REF     compare CORRECTED_DATA and FLAG, rows matched by (TIME, DATA_DESC_ID, ANTENNA1,
                           ANTENNA2); prints a JSON summary; exit 0 identical, 1 different, 2 error.
  compare_ms.py --check MS verify the MS exists and has CORRECTED_DATA; prints one human line;
                           exit 0 ok, 1 not calibrated / missing, 2 error.

Run with the CASA venv's python (needs casatools + numpy), environment as casaenv.py describes.
"""
import json
import os
import sys

KEY_COLS = ("TIME", "DATA_DESC_ID", "ANTENNA1", "ANTENNA2")


def _quiet_casatools():
    """Import casatools without leaving a casa-*.log behind in the caller's directory."""
    import glob
    before = set(glob.glob("casa-*.log"))
    import casatools
    if getattr(casatools, "logger", None) is not None:
        try:
            casatools.logger.setlogfile(os.devnull)
        except Exception:
            pass
    for f in set(glob.glob("casa-*.log")) - before:
        try:
            os.remove(f)
        except OSError:
            pass
    return casatools


def _read(path, cols):
    casatools = _quiet_casatools()
    tb = casatools.table()
    tb.open(path)
    try:
        have = tb.colnames()
        missing = [c for c in cols if c not in have]
        if missing:
            raise LookupError("%s has no column(s) %s" % (os.path.basename(path.rstrip("/")), ", ".join(missing)))
        return {c: tb.getcol(c) for c in cols}, tb.nrows()
    finally:
        tb.close()


def _index(data):
    import numpy as np
    keys = list(zip(np.round(data["TIME"], 4).tolist(), data["DATA_DESC_ID"].tolist(),
                    data["ANTENNA1"].tolist(), data["ANTENNA2"].tolist()))
    idx = {}
    dup = 0
    for i, k in enumerate(keys):
        if k in idx:
            dup += 1
        idx[k] = i
    return idx, dup


def compare(ms, ref, atol=0.0):
    import numpy as np
    cols = KEY_COLS + ("CORRECTED_DATA", "FLAG")
    a, na = _read(ms, cols)
    b, nb = _read(ref, cols)
    ia, dupa = _index(a)
    ib, dupb = _index(b)
    common = sorted(set(ia) & set(ib))
    only_ms = len(set(ia) - set(ib))
    only_ref = len(set(ib) - set(ia))
    rows_a = np.array([ia[k] for k in common], dtype=int)
    rows_b = np.array([ib[k] for k in common], dtype=int)
    summary = {"ms": ms, "ref": ref, "rows": na, "refRows": nb, "matchedRows": len(common),
               "rowsOnlyInMs": only_ms, "rowsOnlyInRef": only_ref, "duplicateKeys": dupa + dupb}
    if len(common):
        ca, cb = a["CORRECTED_DATA"][:, :, rows_a], b["CORRECTED_DATA"][:, :, rows_b]
        fa, fb = a["FLAG"][:, :, rows_a], b["FLAG"][:, :, rows_b]
        if ca.shape != cb.shape:
            raise ValueError("CORRECTED_DATA shapes differ: %s vs %s" % (ca.shape, cb.shape))
        diff = np.abs(ca - cb)
        summary["maxAbsDiffCorrected"] = float(diff.max()) if diff.size else 0.0
        summary["differingCorrected"] = int((diff > atol).sum())
        summary["differingFlags"] = int((fa != fb).sum())
        summary["flaggedMs"] = int(fa.sum())
        summary["flaggedRef"] = int(fb.sum())
    else:
        summary.update(maxAbsDiffCorrected=None, differingCorrected=None, differingFlags=None)
    summary["identical"] = bool(len(common) and only_ms == 0 and only_ref == 0 and dupa + dupb == 0
                                and summary["differingCorrected"] == 0 and summary["differingFlags"] == 0)
    return summary


def check(ms):
    """(ok, one-line verdict)."""
    name = os.path.basename(ms.rstrip("/"))
    if not os.path.isdir(ms):
        return False, "%s: missing" % ms
    casatools = _quiet_casatools()
    tb = casatools.table()
    try:
        tb.open(ms)
    except Exception as e:
        return False, "%s: not a readable measurement set (%s)" % (ms, " ".join(str(e).split())[:200])
    try:
        cols = tb.colnames()
        nrows = tb.nrows()
        if "CORRECTED_DATA" not in cols:
            return False, "%s: NOT calibrated (no CORRECTED_DATA column, %d rows)" % (name, nrows)
        flags = tb.getcol("FLAG")
        frac = float(flags.mean()) if flags.size else 0.0
        return True, "%s: calibrated, %d rows with CORRECTED_DATA, %.1f%% flagged" % (name, nrows, 100 * frac)
    finally:
        tb.close()


def main(argv):
    if len(argv) == 2 and argv[0] == "--check":
        try:
            ok, line = check(argv[1])
        except Exception as e:
            print("%s: error: %s" % (argv[1], e))
            return 2
        print(line)
        return 0 if ok else 1
    if len(argv) != 2 or argv[0].startswith("-"):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    for p in argv:
        if not os.path.isdir(p):
            print(json.dumps({"error": "missing MS: %s" % p}))
            return 2
    try:
        s = compare(argv[0], argv[1])
    except Exception as e:
        print(json.dumps({"error": "%s: %s" % (type(e).__name__, e)}))
        return 2
    print(json.dumps(s))
    return 0 if s["identical"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
