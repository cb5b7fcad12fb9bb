"""Rewrite the XML tables of an exportasdm ASDM so that importasdm yields ALMA-like scans, intents and spw names.

exportasdm writes one scan (intent OBSERVE_TARGET) with many subscans and no spectral-window names. We export
with one integration per subscan, then regroup subscans into scans at each field change or time gap, give each
scan its field's intents, and add ALMA-style spw names (casa-offline.md). Pure text processing, no CASA.
"""
import os
import re

ROW_RE = re.compile(r"<row>(.*?)</row>", re.S)


def _field(row, tag):
    m = re.search(r"<%s>\s*(.*?)\s*</%s>" % (tag, tag), row, re.S)
    return m.group(1) if m else None


def _set(row, tag, value):
    return re.sub(r"<%s>.*?</%s>" % (tag, tag), "<%s> %s </%s>" % (tag, value, tag), row, count=1, flags=re.S)


def _read(path):
    with open(path, encoding="ISO-8859-1") as f:
        return f.read()


def _write(path, text):
    with open(path, "w", encoding="ISO-8859-1") as f:
        f.write(text)


def _replace_rows(text, rows):
    head = text[:text.index("<row>")]
    tail = text[text.rindex("</row>") + len("</row>"):]
    return head + "\n".join("<row>%s</row>" % r for r in rows) + tail


def regroup_scans(asdm, field_intents, gap_factor=0.5):
    """Regroup the single exported scan into scans (field change or gap), set scan intents.

    field_intents: {field name: [ASDM scan intents, e.g. 'CALIBRATE_PHASE']}. Returns the number of scans."""
    sub_path = os.path.join(asdm, "Subscan.xml")
    main_path = os.path.join(asdm, "Main.xml")
    scan_path = os.path.join(asdm, "Scan.xml")
    sub_text = _read(sub_path)
    subs = ROW_RE.findall(sub_text)
    info = []
    for r in subs:
        info.append({"row": r, "old": (int(_field(r, "scanNumber")), int(_field(r, "subscanNumber"))),
                     "start": int(_field(r, "startTime")), "end": int(_field(r, "endTime")),
                     "field": _field(r, "fieldName"), "eb": _field(r, "execBlockId")})
    order = sorted(range(len(info)), key=lambda i: (info[i]["start"], info[i]["old"]))
    scans = []  # each: {"field", "start", "end", "members": [idx]}
    for i in order:
        s = info[i]
        cur = scans[-1] if scans else None
        interval = s["end"] - s["start"]
        if cur is not None and cur["field"] == s["field"] and s["start"] - cur["end"] < gap_factor * interval:
            cur["members"].append(i)
            cur["end"] = max(cur["end"], s["end"])
        else:
            scans.append({"field": s["field"], "start": s["start"], "end": s["end"], "members": [i], "eb": s["eb"]})
    mapping = {}
    for n, sc in enumerate(scans, 1):
        for k, i in enumerate(sc["members"], 1):
            mapping[info[i]["old"]] = (n, k)
    new_sub_rows = []
    for n, sc in enumerate(scans, 1):
        for k, i in enumerate(sc["members"], 1):
            r = _set(info[i]["row"], "scanNumber", n)
            r = _set(r, "subscanNumber", k)
            new_sub_rows.append(r)
    _write(sub_path, _replace_rows(sub_text, new_sub_rows))

    main_text = _read(main_path)
    main_rows = []
    for r in ROW_RE.findall(main_text):
        key = (int(_field(r, "scanNumber")), int(_field(r, "subscanNumber")))
        if key not in mapping:
            raise ValueError("Main row refers to unknown subscan %s" % (key,))
        n, k = mapping[key]
        main_rows.append(_set(_set(r, "scanNumber", n), "subscanNumber", k))
    _write(main_path, _replace_rows(main_text, main_rows))

    scan_text = _read(scan_path)
    scan_rows = []
    for n, sc in enumerate(scans, 1):
        intents = field_intents[sc["field"]]
        k = len(intents)
        scan_rows.append(
            " \n<scanNumber> %d </scanNumber> <startTime> %d </startTime> <endTime> %d </endTime> "
            "<numIntent> %d </numIntent> <numSubscan> %d </numSubscan> <scanIntent> 1 %d %s</scanIntent>"
            "<calDataType> 1 %d %s</calDataType><calibrationOnLine> 1 %d %s </calibrationOnLine> "
            "<execBlockId> %s </execBlockId> "
            % (n, sc["start"], sc["end"], k, len(sc["members"]), k, " ".join(intents), k,
               " ".join(["FULL_RESOLUTION_CROSS"] * k), k, " ".join(["false"] * k), sc["eb"]))
    _write(scan_path, _replace_rows(scan_text, scan_rows))
    set_row_count(asdm, "Scan", len(scan_rows))
    set_row_count(asdm, "Subscan", len(new_sub_rows))
    set_row_count(asdm, "Main", len(main_rows))
    return len(scans)


def set_row_count(asdm, table, n):
    path = os.path.join(asdm, "ASDM.xml")
    text = _read(path)
    new, count = re.subn(r"(<Name>\s*%s\s*</Name>\s*<NumberRows>)\s*\d+\s*(</NumberRows>)" % table,
                         r"\g<1> %d \g<2>" % n, text)
    if count != 1:
        raise ValueError("ASDM.xml has no table %s" % table)
    _write(path, new)


def name_spws(asdm, band=3, prefix="X%d", kinds=None, basebands=None):
    """Give each spectral window an ALMA-style name and baseband: X<n>#ALMA_RB_03#BB_<b>#SW-01#<kind>, the kind
    FULL_RES (a science spw) or CH_AVG (the correlator's channel average of a baseband), by default FULL_RES and
    baseband i+1 for spw i."""
    path = os.path.join(asdm, "SpectralWindow.xml")
    text = _read(path)
    rows = ROW_RE.findall(text)
    new_rows = []
    for i, r in enumerate(rows):
        kind = kinds[i] if kinds else "FULL_RES"
        bb = basebands[i] if basebands else i + 1
        name = "%s#ALMA_RB_%02d#BB_%d#SW-01#%s" % (prefix % (100 + 16 * i), band, bb, kind)
        r = re.sub(r"<basebandName>\s*NOBB\s*</basebandName>", "<basebandName>BB_%d</basebandName>" % bb, r)
        if "<name>" not in r:
            r = r.rstrip() + " <name> %s </name> " % name
        new_rows.append(r)
    _write(path, _replace_rows(text, new_rows))
    return len(new_rows)


def set_project(asdm, project_uid):
    """Point the ExecBlock's projectUID at the ObsProject (exportasdm writes a placeholder)."""
    path = os.path.join(asdm, "ExecBlock.xml")
    text = _read(path)
    new, n = re.subn(r'(<projectUID>\s*<EntityRef entityId=")[^"]*(")', r"\g<1>%s\g<2>" % project_uid, text)
    if n:
        _write(path, new)
    return n


def set_creation_time(asdm, iso):
    """Replace exportasdm's wall-clock TimeOfCreation (makes the ASDM reproducible and dated like the EB)."""
    path = os.path.join(asdm, "ASDM.xml")
    text = _read(path)
    new, n = re.subn(r"<TimeOfCreation>[^<]*</TimeOfCreation>", "<TimeOfCreation> %s </TimeOfCreation>" % iso, text)
    if n:
        _write(path, new)
    return n
