"""Pipeline ``<vis>.calapply.txt`` files: parse, translate intents, re-root gaintables (no CASA needed).

Format (alma-restore.md §5.3): first line ``# Apply file for <vis>``, then one
``applycal(vis='…', field='…', intent='…', spw='…', antenna='…', gaintable=[…], gainfield=[…], spwmap=[…],
interp=[…], calwt=[…])`` per line; a one-element list may be written as a scalar; older pipelines omit
``intent`` and/or ``calwt``. Only lines starting with ``applycal(`` are used.
"""
import ast
import os

# Pipeline short intent → CASA intent pattern (casa-offline.md, Restoring step 4).
INTENT_MAP = {
    "BANDPASS": "CALIBRATE_BANDPASS",
    "PHASE": "CALIBRATE_PHASE",
    "AMPLITUDE": "CALIBRATE_FLUX",
    "TARGET": "OBSERVE_TARGET",
    "CHECK": "OBSERVE_CHECK_SOURCE",
    "POLARIZATION": "CALIBRATE_POLARIZATION",
    "POLANGLE": "CALIBRATE_POL_ANGLE",
    "POLLEAKAGE": "CALIBRATE_POL_LEAKAGE",
    "DIFFGAINREF": "CALIBRATE_DIFFGAIN_REFERENCE",
    "DIFFGAINSRC": "CALIBRATE_DIFFGAIN_SCIENCE",
    "ATMOSPHERE": "CALIBRATE_ATMOSPHERE",
    "WVR": "CALIBRATE_WVR",
}

LIST_ARGS = ("gaintable", "gainfield", "interp", "calwt")  # spwmap passes through as written
ALLOWED_ARGS = {"vis", "field", "intent", "spw", "antenna", "gaintable", "gainfield", "spwmap", "interp", "calwt",
                "scan", "timerange", "uvrange", "observation", "msselect", "parang", "applymode", "flagbackup",
                "selectdata", "correlation", "callib"}


class CalApplyError(ValueError):
    """A calapply line that cannot be replayed safely."""


def header_vis(text):
    """The vis named on the ``# Apply file for <vis>`` line, or None."""
    for line in text.splitlines():
        s = line.strip()
        if s.startswith("# Apply file for"):
            return s[len("# Apply file for"):].strip() or None
    return None


def parse_line(line):
    """Parse one ``applycal(...)`` line into a dict of literal keyword arguments."""
    try:
        tree = ast.parse(line.strip(), mode="eval")
    except SyntaxError as e:
        raise CalApplyError("not a Python call: %s" % e.msg)
    call = tree.body
    if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "applycal"):
        raise CalApplyError("not an applycal(...) call")
    if call.args:
        raise CalApplyError("positional arguments are not supported")
    kwargs = {}
    for kw in call.keywords:
        if kw.arg is None:
            raise CalApplyError("**kwargs are not supported")
        try:
            kwargs[kw.arg] = ast.literal_eval(kw.value)
        except ValueError:
            raise CalApplyError("argument %s is not a literal" % kw.arg)
    unknown = set(kwargs) - ALLOWED_ARGS
    if unknown:
        raise CalApplyError("unsupported applycal argument(s): %s" % ", ".join(sorted(unknown)))
    return kwargs


def parse(text):
    """All applycal calls of a calapply file, in order, as keyword dicts (raw, untranslated)."""
    calls = []
    for n, line in enumerate(text.splitlines(), 1):
        if line.startswith("applycal("):
            try:
                calls.append(parse_line(line))
            except CalApplyError as e:
                raise CalApplyError("line %d: %s" % (n, e))
    return calls


def translate_intent(intent):
    """Pipeline short intents (comma separated) → CASA wildcard intent selection.

    Already-qualified CASA intents (containing ``CALIBRATE_``/``OBSERVE_`` or wildcards) pass through."""
    if intent is None:
        return ""
    if isinstance(intent, (list, tuple)):
        intent = ",".join(intent)
    out = []
    for part in str(intent).split(","):
        p = part.strip()
        if not p:
            continue
        if p.upper() in INTENT_MAP:
            out.append("*%s*" % INTENT_MAP[p.upper()])
        elif "*" in p or "#" in p or p.startswith(("CALIBRATE_", "OBSERVE_")):
            out.append(p)
        else:
            raise CalApplyError("unknown intent %r" % p)
    return ",".join(out)


def _as_list(v):
    if v is None:
        return []
    if isinstance(v, (list, tuple)):
        return list(v)
    return [v]


# hifa_restoredata (PIPE-1973): a caltable made by hifa_polcal among those applied → applycal with parang=True.
POLCAL_MARKER = ".hifa_polcal."


def uses_polcal(calls):
    """Whether any of these applycal calls (parsed or prepared) applies a hifa_polcal table."""
    return any(POLCAL_MARKER in os.path.basename(str(t).rstrip("/"))
               for c in calls for t in _as_list(c.get("gaintable")))


def parang_for(calls_by_vis):
    """hifa_restoredata's parang decision, for the whole restore: ALMARestoreData._do_applycal looks for a
    hifa_polcal table in the calibration state of every MS and, if one is found in any of them, sets parang=True
    on the one applycal container, i.e. for every MS. ``calls_by_vis``: {vis: [calls]}."""
    return any(uses_polcal(calls) for calls in calls_by_vis.values())


def prepare(call, vis, workdir, parang=False, flagbackup=False):
    """Make one parsed call runnable: vis → the new MS, gaintables → <workdir>/<basename>, intents translated,
    scalars → lists, applymode='calflagstrict', and parang/flagbackup as the pipeline's applycal sets them
    (whatever the line says: the pipeline's callibrary import keeps only the calibration state, and applycal's
    own inputs decide parang and flagbackup)."""
    kw = dict(call)
    kw["vis"] = vis
    for name in LIST_ARGS:
        if name in kw:
            kw[name] = _as_list(kw[name])
    kw["gaintable"] = [os.path.join(workdir, os.path.basename(str(t).rstrip("/"))) for t in kw.get("gaintable", [])]
    if "intent" in kw:
        kw["intent"] = translate_intent(kw["intent"])
    kw["applymode"] = "calflagstrict"
    kw["parang"] = bool(parang)
    kw["flagbackup"] = bool(flagbackup)
    return kw


def prepare_file(text, vis, workdir, parang=None):
    """Parse a calapply file and prepare every call for ``vis`` with tables in ``workdir``.

    flagbackup: the pipeline's applycal (h/tasks/applycal, ``flagbackup`` default True, not overridden by
    hifa_restoredata) makes ONE applycal call per MS (CASA callibrary), so the MS's flags are backed up once
    (``applycal_1`` in ``<vis>.flagversions``) before calibration. We replay one call per line, so the first call
    backs up and the others do not — the same single backup, the same flags. parang: None decides from this file
    alone (``uses_polcal``); restore_mous passes the MOUS-wide ``parang_for`` decision."""
    calls = parse(text)
    if parang is None:
        parang = uses_polcal(calls)
    return [prepare(c, vis, workdir, parang=parang, flagbackup=(i == 0)) for i, c in enumerate(calls)]
