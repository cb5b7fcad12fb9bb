"""Read a SciPipeRequest (PPR) the way the ALMA pipeline's executeppr does (alma-restore.md §3). No CASA needed.

Facts reproduced here:
- namespace-aware parse, elements matched by local name ('-' becomes '_'); a leaf must be one text node;
- values are type-cast (numbers, true/false, list/tuple/dict literals);
- required elements: ProposalCode, Observatory, Telescope, the ProjectStructure refs, ProcessingIntents,
  ProcessingProcedure, RelativePath; exactly one SchedBlockSet and one SchedBlockIdentifier;
- repeated elements are read until the first bad one (an Intents without Keyword, a ProcessingCommand without
  ParameterSet, an AsdmIdentifier without AsdmRef/ExecBlockId), which is dropped with everything after it;
- SESSION_1, SESSION_2, ... read until the first missing number; values are ' | '-joined uids, each sanitized
  (':' and '/' → '_'); each ASDM takes the lower-cased key of the first session listing it, else 'session_1';
  the AsdmDiskName is compared after stripping '.ms'-style suffixes.
"""
import ast
import os
import xml.etree.ElementTree as ET


class PPRError(ValueError):
    """The PPR cannot be used; the message says why (one line)."""


def local(tag):
    if not isinstance(tag, str):
        return ""
    if "}" in tag:
        tag = tag.rsplit("}", 1)[1]
    if ":" in tag:
        tag = tag.rsplit(":", 1)[1]
    return tag.replace("-", "_")


def children(el, name):
    return [c for c in el if local(c.tag) == name]


def child(el, name):
    c = children(el, name)
    return c[0] if c else None


def leaf_text(el, what):
    """Text of a leaf: exactly one text node (no child elements, no comments)."""
    if len(list(el)) or any(isinstance(c.tag, type(ET.Comment)) for c in el):
        raise PPRError("%s is not a plain text leaf" % what)
    return el.text if el.text is not None else ""


def cast(value):
    """The pipeline's leaf caster: numbers, booleans, Python literals; everything else stays a string."""
    s = value
    low = s.strip().lower()
    if low == "true":
        return True
    if low == "false":
        return False
    for conv in (int, float):
        try:
            return conv(s)
        except ValueError:
            pass
    st = s.strip()
    if st[:1] in "[({" and st:
        try:
            v = ast.literal_eval(st)
            if isinstance(v, (list, tuple, dict)):
                return v
        except (ValueError, SyntaxError):
            pass
    return s


def required(el, path, what=None):
    cur = el
    for name in path.split("/"):
        nxt = child(cur, name) if cur is not None else None
        if nxt is None:
            raise PPRError("PPR has no %s" % (what or path))
        cur = nxt
    return cur


def sanitize(uid):
    return str(uid).replace(":", "_").replace("/", "_")


MS_SUFFIXES = ("_targets_line.ms", "_imaging_line.ms", "_imaging.ms", "_targets.ms", "_target.ms", ".ms")


def strip_ms_suffix(name):
    for suf in MS_SUFFIXES:
        if name.endswith(suf):
            return name[: -len(suf)]
    return name


def parse_sessions(intents):
    """{'session_n': [sanitized uids]} for SESSION_1.. contiguous; stops at the first missing number."""
    sessions = []
    n = 1
    while "SESSION_%d" % n in intents:
        value = intents["SESSION_%d" % n]
        if not isinstance(value, str):
            raise PPRError("SESSION_%d value is not a list of uids: %r" % (n, value))
        members = [sanitize(v) for v in value.split(" | ")] if value != "" else []
        sessions.append(("session_%d" % n, members))
        n += 1
    return sessions


def session_of(disk_name, sessions):
    key = strip_ms_suffix(disk_name)
    for name, members in sessions:
        if key in members:
            return name
    return "session_1"


def parse(path):
    """Parse a PPR file. Returns a dict with the fields executeppr reads plus the ASDM list with sessions."""
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as e:
        raise PPRError("PPR is not well-formed XML: %s" % e)
    except OSError as e:
        raise PPRError("cannot read PPR: %s" % e)
    return parse_root(root)


def parse_text(text):
    """Parse a PPR given as a string or bytes."""
    try:
        root = ET.fromstring(text)
    except ET.ParseError as e:
        raise PPRError("PPR is not well-formed XML: %s" % e)
    return parse_root(root)


def parse_root(root):
    if local(root.tag) != "SciPipeRequest":
        raise PPRError("root element is %s, not SciPipeRequest" % local(root.tag))

    out = {}
    summary = required(root, "ProjectSummary")
    for f in ("ProposalCode", "Observatory", "Telescope"):
        out[f] = cast(leaf_text(required(summary, f), f))

    structure = required(root, "ProjectStructure")
    alma = child(structure, "AlmaStructure")
    holder = alma if alma is not None else structure
    for ref in ("ObsUnitSetRef", "ProjectStatusRef", "OUSStatusRef"):
        el = child(holder, ref)
        if el is None:
            raise PPRError("PPR has no %s" % ref)
        out[ref] = {"entityId": el.get("entityId", ""), "entityTypeName": el.get("entityTypeName", ""),
                    "partId": el.get("partId", "")}
    for f in ("ObsUnitSetTitle", "ObsUnitSetType"):
        el = child(holder, f)
        out[f] = cast(leaf_text(el, f)) if el is not None else None

    requests = children(required(root, "ProcessingRequests"), "ProcessingRequest")
    if not requests:
        raise PPRError("Terminating execution: No valid processing requests")
    req = requests[0]

    intents = {}
    for it in children(required(req, "ProcessingIntents"), "Intents"):
        k = child(it, "Keyword")
        if k is None:
            break
        v = child(it, "Value")
        intents[leaf_text(k, "Intents/Keyword")] = cast(leaf_text(v, "Intents/Value")) if v is not None else ""
    out["intents"] = intents

    proc = required(req, "ProcessingProcedure")
    title = child(proc, "ProcedureTitle")
    out["ProcedureTitle"] = cast(leaf_text(title, "ProcedureTitle")) if title is not None else "Undefined"
    commands = []
    for pc in children(proc, "ProcessingCommand"):
        cmd = child(pc, "Command")
        ps = child(pc, "ParameterSet")
        if cmd is None or ps is None:
            break
        params = {}
        for p in children(ps, "Parameter"):
            k = child(p, "Keyword")
            if k is None:
                break
            v = child(p, "Value")
            params[leaf_text(k, "Parameter/Keyword")] = cast(leaf_text(v, "Parameter/Value")) if v is not None else ""
        commands.append({"command": leaf_text(cmd, "Command"), "params": params})
    if not commands:
        raise PPRError("Empty commands list")
    out["commands"] = commands

    dataset = required(req, "DataSet")
    sbsets = children(dataset, "SchedBlockSet")
    if len(sbsets) != 1:
        raise PPRError("Terminating execution: No valid processing requests (%d SchedBlockSet elements)"
                       % len(sbsets))
    sbids = children(sbsets[0], "SchedBlockIdentifier")
    if len(sbids) != 1:
        raise PPRError("Terminating execution: No valid scheduling block sets (%d SchedBlockIdentifier elements)"
                       % len(sbids))
    sbid = sbids[0]
    rp = child(sbid, "RelativePath")
    if rp is None:
        raise PPRError("PPR has no RelativePath")
    relpath = cast(leaf_text(rp, "RelativePath"))
    if not isinstance(relpath, str) or not relpath.strip():
        raise PPRError("Undefined relative data path")
    out["RelativePath"] = relpath

    asdms = []
    for ai in children(sbid, "AsdmIdentifier"):
        ref = child(ai, "AsdmRef")
        eb = child(ref, "ExecBlockId") if ref is not None else None
        dn = child(ai, "AsdmDiskName")
        if eb is None or dn is None:
            break
        asdms.append({"ExecBlockId": leaf_text(eb, "ExecBlockId"), "AsdmDiskName": leaf_text(dn, "AsdmDiskName")})
    if not asdms:
        raise PPRError("Empty ASDM list")
    sessions = parse_sessions(intents)
    for a in asdms:
        a["session"] = session_of(a["AsdmDiskName"], sessions)
    out["sessions"] = sessions
    out["asdms"] = asdms
    return out


def directories(ppr, cwd=None, environ=None):
    """(working, rawdata, products) directories as executeppr/hifa_restoredata resolve them."""
    environ = os.environ if environ is None else environ
    cwd = cwd or os.getcwd()
    root = environ.get("SCIPIPE_ROOTDIR")
    if root:
        base = os.path.join(root, ppr["RelativePath"])
        working = os.path.join(base, "working")
        rawdata = os.path.join(base, "rawdata")
    else:
        working = cwd
        rawdata = os.path.normpath(os.path.join(cwd, "..", "rawdata"))
    products = os.path.normpath(os.path.join(working, "..", "products"))
    return working, rawdata, products
