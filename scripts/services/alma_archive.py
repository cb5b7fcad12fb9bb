#!/usr/bin/env python3
"""A stand-in for the public ALMA archive's IVOA services, for tests (stdlib only, no network).

    python3 alma_archive.py --config CONFIG.json [--port 0] [--ready-file F] [--run-dir DIR] [--log FILE]
                            [--templates DIR] [--forbid-products]

Serves, under its base URL B (the agent's `sources.almaArchive.url`), exactly what /work/coord/packages.md fixes:
  GET/POST B/tap/sync     REQUEST=doQuery, LANG=ADQL, QUERY=<ADQL>, optional FORMAT|RESPONSEFORMAT=votable, MAXREC.
                          Only the agent's query is answered:
                            SELECT DISTINCT member_ous_uid, group_ous_uid, proposal_id, data_rights, obs_release_date
                            FROM ivoa.obscore WHERE member_ous_uid = '<uid://...>'
                          (keywords and whitespace normalised). A TAP result VOTable, 0 rows for an unknown MOUS.
                          Anything else: HTTP 400 + a TAP error VOTable (QUERY_STATUS ERROR) + a recorded failure.
  GET B/datalink/sync?ID=<mous uid>
                          A DataLink VOTable shaped like ALMA's (#documentation, #this, #auxiliary, #progenitor rows
                          with access_url B/dataPortal/<file>, plus the service_def rows and adhoc:service resources
                          for the tars). Unknown ID: one error row (error_message "NotFoundFault: ..."). A missing or
                          unknown parameter: HTTP 400 + error VOTable + a recorded failure.
  GET/HEAD B/dataPortal/<file>
                          The file, with Content-Length, Content-Disposition: attachment; filename="<file>",
                          Accept-Ranges: bytes; `Range: bytes=N-` (or N-M) -> 206 + Content-Range; past the end -> 416.
                          Files of a Proprietary MOUS need `Authorization: Bearer <token>` (401 otherwise).
                          With --forbid-products, a GET of a product tar (`_00N_of_00M.tar`) is a recorded failure.
  GET B/tap/availability  The TAP service's VOSI availability document (VOSI 1.1 §3.3): <vosi:available>true.
  Bearer tokens           A request to tap/, datalink/ or the availability resource carrying `Authorization: Bearer
                          <token>` with a token that is not one of the configured ones gets 401 with
                          `WWW-Authenticate: Bearer error="invalid_token"` (RFC 6750 §3.1), as a service that checks
                          tokens answers an expired or wrong one; not a recorded failure (agents' login checks expect it).
  GET B/_failures         the recorded failures (JSON list); tests assert it is empty.
  GET B/_requests         the request log so far (JSON list); same records as --log.
  GET B/_reset            clears both.
Any other path: 404 + a recorded failure.

CONFIG (JSON): {"mouses": [{"mous": "uid://A001/X3f01/X1a5", "project": "2019.1.00001.S",
  "groupOus": "uid://A001/X3f01/X1a4", "dataRights": "Public"|"Proprietary", "releaseDate": "2024-09-01T00:00:00.000",
  "packageDir": "DIR" (relative to the config file), "token": "secret" (optional; needed for Proprietary files)}]}
(a bare list of MOUS objects is accepted too). A package directory holds the archive's files for that MOUS:
`<project>_uid___<MOUS>_auxiliary.tar`, `<project>_uid___<MOUS>_001_of_001.tar`, `<project>_uid___<EB>.asdm.sdm.tar`,
`member.uid___<MOUS>.README.txt`; other entries (e.g. untarred trees) are ignored.

Every request is appended to the JSON-lines log (--log): time, method, path, query (decoded), headers of interest
(authorization as "Bearer" + whether the token was right, never the token itself; range; user-agent; content-type),
status, bytes sent. When ready, writes --ready-file (JSON {"port", "url", "pid"}, atomically) and RUN_DIR/port,
RUN_DIR/pid (as the other services here do), and prints "PORT <n>". Stops on SIGTERM.
The response shapes and where they come from: tests/data/alma-archive/README.md.
"""
import argparse, datetime, json, os, re, signal, string, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, quote, unquote, urlsplit
from xml.sax.saxutils import escape, quoteattr

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_TEMPLATES = os.path.join(ROOT, "tests", "data", "alma-archive")

UID = re.compile(r"^uid://[A-Za-z][0-9A-Za-z]*/X[0-9A-Fa-f]+/X[0-9A-Fa-f]+$")
SPEC_COLUMNS = ["member_ous_uid", "group_ous_uid", "proposal_id", "data_rights", "obs_release_date"]
# The agent's query with its literal replaced: keywords case-insensitive, any whitespace between tokens.
QUERY_RE = re.compile(
    r"^\s*SELECT\s+DISTINCT\s+(?P<cols>.+?)\s+FROM\s+(?P<table>\S+)\s+WHERE\s+(?P<wcol>\w+)\s*=\s*(?P<lit>.+?)\s*$",
    re.IGNORECASE | re.DOTALL)
VOTABLE_FORMATS = {"votable", "application/x-votable+xml", "text/xml"}
DATALINK_FORMATS = {"votable", "application/x-votable+xml", "application/x-votable+xml;content=datalink"}
TAP_CT = "application/x-votable+xml"
DATALINK_CT = "application/x-votable+xml;content=datalink"
SENSITIVE = ("authorization",)


# VOSI 1.1 §3.3 (namespace http://www.ivoa.net/xml/VOSIAvailability/v1.0); note text as CADC services write it.
VOSI_AVAILABILITY = ('<?xml version="1.0" encoding="UTF-8"?>\n'
                     '<vosi:availability xmlns:vosi="http://www.ivoa.net/xml/VOSIAvailability/v1.0">\n'
                     '  <vosi:available>true</vosi:available>\n'
                     '  <vosi:note>service is accepting queries</vosi:note>\n'
                     '</vosi:availability>\n')


def sanitize(uid):
    return uid.replace("uid://", "uid___").replace("/", "_")


class Archive:
    """Configuration, templates, the request log and the recorded failures (shared by all handler threads)."""

    def __init__(self, config_path, templates_dir, log_path, forbid_products):
        self.lock = threading.Lock()
        self.failures, self.requests = [], []
        self.log_path = log_path
        self.forbid_products = forbid_products
        tdir = os.path.join(templates_dir, "templates")
        self.templates = {name: string.Template(open(os.path.join(tdir, name + ".xml"), encoding="utf-8").read())
                          for name in ("tap-result", "tap-error", "datalink-result", "datalink-service")}
        with open(os.path.join(templates_dir, "obscore-columns.txt"), encoding="utf-8") as f:
            self.obscore_columns = {line.strip().lower() for line in f if line.strip() and not line.startswith("#")}
        with open(config_path, encoding="utf-8") as f:
            config = json.load(f)
        entries = config if isinstance(config, list) else config.get("mouses")
        if not isinstance(entries, list):
            raise SystemExit("config: expected {\"mouses\": [...]} or a list")
        base = os.path.dirname(os.path.abspath(config_path))
        self.mouses, self.files = {}, {}
        for e in entries:
            for key in ("mous", "project", "groupOus", "dataRights", "releaseDate", "packageDir"):
                if not isinstance(e.get(key), str) or not e[key]:
                    raise SystemExit(f"config: {e.get('mous', '?')}: {key} missing")
            if not UID.match(e["mous"]) or not UID.match(e["groupOus"]):
                raise SystemExit(f"config: {e['mous']}: mous/groupOus must be uid://A.../X.../X...")
            if e["dataRights"] not in ("Public", "Proprietary"):
                raise SystemExit(f"config: {e['mous']}: dataRights must be Public or Proprietary")
            if e["dataRights"] == "Proprietary" and not e.get("token"):
                print(f"alma_archive: {e['mous']} is Proprietary without a token: its files always answer 401", file=sys.stderr)
            pkg = os.path.join(base, e["packageDir"])
            if not os.path.isdir(pkg):
                raise SystemExit(f"config: {e['mous']}: packageDir {pkg} is not a directory")
            m = dict(e, packageDir=pkg, links=self.classify(e, pkg))
            self.mouses[e["mous"]] = m
            for link in m["links"]:
                if link["file"] in self.files:
                    raise SystemExit(f"config: {link['file']} is in two package directories")
                self.files[link["file"]] = (m, link["path"])

    @staticmethod
    def classify(e, pkg):
        """The DataLink rows of one MOUS from its package directory, in the order of the recording."""
        mous, project = sanitize(e["mous"]), re.escape(e["project"])
        kinds = [("#documentation", re.compile(r"^member\.%s\.README\.txt$" % re.escape(mous)), "text/plain"),
                 ("#this", re.compile(r"^%s_%s_\d{3}_of_\d{3}\.tar$" % (project, re.escape(mous))), "application/x-tar"),
                 ("#auxiliary", re.compile(r"^%s_%s_auxiliary\.tar$" % (project, re.escape(mous))), "application/x-tar"),
                 ("#progenitor", re.compile(r"^%s_uid___[A-Za-z][0-9A-Za-z]*_X[0-9A-Fa-f]+_X[0-9A-Fa-f]+\.asdm\.sdm\.tar$" % project),
                  "application/x-tar")]
        links = []
        for order, (sem, rx, ctype) in enumerate(kinds):
            for name in sorted(os.listdir(pkg)):
                path = os.path.join(pkg, name)
                if rx.match(name) and os.path.isfile(path):
                    links.append({"semantics": sem, "file": name, "path": path, "content_type": ctype, "order": order})
        return links

    def fail(self, what, request):
        with self.lock:
            self.failures.append({"what": what, "request": request})

    def record(self, entry):
        with self.lock:
            self.requests.append(entry)
            if self.log_path:
                with open(self.log_path, "a", encoding="utf-8") as f:
                    f.write(json.dumps(entry) + "\n")

    def template(self, name, **values):
        return self.templates[name].substitute(**values)


def td(value):
    return "            <TD />\n" if value is None or value == "" else "            <TD>%s</TD>\n" % escape(str(value))


def tr(values):
    return "          <TR>\n" + "".join(td(v) for v in values) + "          </TR>\n"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ALMA-archive-standin/1"

    def log_message(self, fmt, *args):
        pass

    # --- plumbing -------------------------------------------------------------------------------------------
    @property
    def archive(self):
        return self.server.archive

    def base_url(self):
        return "http://%s" % self.headers.get("Host", "127.0.0.1:%d" % self.server.server_address[1])

    def describe(self):
        url = urlsplit(self.path)
        pairs = getattr(self, "params_for_log", None)
        if pairs is None:
            pairs = parse_qsl(url.query, keep_blank_values=True)
        return {"method": self.command, "path": unquote(url.path), "query": pairs}

    def failure(self, what):
        self.archive.fail(what, self.describe())

    def send(self, status, body=b"", ctype="text/plain; charset=utf-8", extra=()):
        if isinstance(body, str):
            body = body.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        self.status_sent, self.bytes_sent = status, 0
        if self.command != "HEAD":
            self.wfile.write(body)
            self.bytes_sent = len(body)

    def auth_info(self, mous=None):
        value = self.headers.get("Authorization")
        if value is None:
            return None
        scheme, _, token = value.partition(" ")
        info = {"scheme": scheme}
        if mous is not None and mous.get("token"):
            info["tokenValid"] = scheme == "Bearer" and token.strip() == mous["token"]
        else:
            info["tokenValid"] = scheme == "Bearer" and any(token.strip() == m.get("token") for m in self.archive.mouses.values())
        return info

    def invalid_token(self):
        """Whether the request carries a bearer token the archive does not know (no token at all is fine)."""
        value = self.headers.get("Authorization")
        if value is None:
            return False
        scheme, _, token = value.partition(" ")
        known = {m.get("token") for m in self.archive.mouses.values() if m.get("token")}
        return scheme != "Bearer" or token.strip() not in known

    def handle_one(self):
        self.status_sent, self.bytes_sent, self.params_for_log, self.auth_mous = None, 0, None, None
        started = time.time()
        try:
            self.route()
        finally:
            entry = {"time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds"),
                     **self.describe(), "status": self.status_sent, "bytes": self.bytes_sent,
                     "ms": round((time.time() - started) * 1000, 1),
                     "headers": {"authorization": self.auth_info(self.auth_mous), "range": self.headers.get("Range"),
                                 "user-agent": self.headers.get("User-Agent"),
                                 "content-type": self.headers.get("Content-Type")}}
            self.archive.record(entry)

    do_GET = do_HEAD = do_POST = handle_one

    def do_PUT(self):
        self.handle_one()

    do_DELETE = do_PATCH = do_OPTIONS = do_PUT

    def route(self):
        url = urlsplit(self.path)
        path = url.path
        if path == "/_failures" and self.command == "GET":
            with self.archive.lock:
                return self.send(200, json.dumps(self.archive.failures, indent=1), "application/json")
        if path == "/_requests" and self.command == "GET":
            with self.archive.lock:
                return self.send(200, json.dumps(self.archive.requests, indent=1), "application/json")
        if path == "/_reset" and self.command == "GET":
            with self.archive.lock:
                self.archive.failures.clear()
                self.archive.requests.clear()
            return self.send(200, "{}", "application/json")
        if path in ("/tap/sync", "/tap/availability", "/datalink/sync") and self.invalid_token():
            return self.send(401, "401 Unauthorized: the bearer token is invalid or expired\n",
                             extra=[("WWW-Authenticate", 'Bearer realm="ALMA", error="invalid_token", '
                                                         'error_description="the token is invalid or expired"')])
        if path == "/tap/availability":
            if self.command not in ("GET", "HEAD"):
                self.failure("VOSI availability accepts GET, not %s" % self.command)
                return self.send(405, "405 Method Not Allowed\n")
            return self.send(200, VOSI_AVAILABILITY, "text/xml; charset=utf-8")
        if path == "/tap/sync":
            return self.tap()
        if path == "/datalink/sync":
            return self.datalink()
        if path.startswith("/dataPortal/"):
            return self.data_portal(unquote(path[len("/dataPortal/"):]))
        self.failure("unexpected path %s %s" % (self.command, path))
        return self.send(404, "404 Not Found: %s\n" % path)

    def params(self, allowed_methods):
        """The request's parameters as a list of (NAME upper-cased, value); None (and answered) if unusable."""
        url = urlsplit(self.path)
        pairs = parse_qsl(url.query, keep_blank_values=True)
        if self.command not in allowed_methods:
            return None
        if self.command == "POST":
            ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode("utf-8", "replace") if length else ""
            if ctype != "application/x-www-form-urlencoded":
                return "POST body must be application/x-www-form-urlencoded (got %r)" % ctype
            pairs += parse_qsl(body, keep_blank_values=True)
        self.params_for_log = pairs
        return [(k.upper(), v) for k, v in pairs]  # DALI: parameter names are case-insensitive, values are not

    # --- TAP ------------------------------------------------------------------------------------------------
    def tap_error(self, message, status=400):
        self.failure("TAP: " + message)
        body = self.archive.template("tap-error", message=escape(message))
        return self.send(status, body, TAP_CT)

    def tap(self):
        params = self.params(("GET", "POST"))
        if params is None:
            return self.tap_error("TAP sync accepts GET and POST, not %s" % self.command, 405)
        if isinstance(params, str):
            return self.tap_error(params)
        seen = {}
        for k, v in params:
            seen.setdefault(k, []).append(v)
        unknown = sorted(set(seen) - {"REQUEST", "LANG", "QUERY", "FORMAT", "RESPONSEFORMAT", "MAXREC"})
        if unknown:
            return self.tap_error("UsageFault: unexpected parameter(s) %s" % ", ".join(unknown))
        dup = sorted(k for k, v in seen.items() if len(v) > 1)
        if dup:
            return self.tap_error("UsageFault: parameter(s) given more than once: %s" % ", ".join(dup))
        one = {k: v[0] for k, v in seen.items()}
        if one.get("REQUEST") != "doQuery":
            return self.tap_error("UsageFault: REQUEST must be doQuery (got %r)" % one.get("REQUEST"))
        if one.get("LANG") != "ADQL":
            return self.tap_error("UsageFault: LANG must be ADQL (got %r)" % one.get("LANG"))
        for key in ("FORMAT", "RESPONSEFORMAT"):
            if key in one and one[key] not in VOTABLE_FORMATS:
                return self.tap_error("UsageFault: unsupported %s %r (this stand-in answers votable only)" % (key, one[key]))
        if "MAXREC" in one and not re.fullmatch(r"\d+", one["MAXREC"]):
            return self.tap_error("UsageFault: MAXREC must be a non-negative integer (got %r)" % one["MAXREC"])
        query = one.get("QUERY")
        if not query:
            return self.tap_error("UsageFault: QUERY missing")
        mous, problem = self.check_adql(query)
        if problem:
            return self.tap_error(problem)
        rows = ""
        m = self.archive.mouses.get(mous)
        if m is not None and one.get("MAXREC") != "0":
            rows = tr([m["mous"], m["groupOus"], m["project"], m["dataRights"], m["releaseDate"]])
        now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + "%03d" % (time.time() % 1 * 1000)
        body = self.archive.template("tap-result", timestamp=now, query=escape(query, {'"': "&quot;"}), rows=rows)
        return self.send(200, body, TAP_CT)

    def check_adql(self, query):
        """(mous uid, None) for the agent's query; (None, why) for anything else."""
        m = QUERY_RE.match(query)
        if not m:
            return None, ("IllegalArgumentException: this stand-in answers only `SELECT DISTINCT %s FROM ivoa.obscore "
                          "WHERE member_ous_uid = '<uid>'`; got: %s" % (", ".join(SPEC_COLUMNS), query))
        cols = [c.strip() for c in m.group("cols").split(",")]
        if m.group("table").lower() != "ivoa.obscore":
            return None, "IllegalArgumentException: Table [ %s ] is not found in TapSchema" % m.group("table")
        for c in cols + [m.group("wcol")]:
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", c) or c.lower() not in self.archive.obscore_columns:
                return None, "IllegalArgumentException: Column [ %s ] is not found in table ivoa.obscore" % c
        if [c.lower() for c in cols] != SPEC_COLUMNS:
            return None, "stand-in: the column list must be exactly %s (got %s)" % (", ".join(SPEC_COLUMNS), ", ".join(cols))
        if m.group("wcol").lower() != "member_ous_uid":
            return None, "stand-in: the WHERE clause must be on member_ous_uid (got %s)" % m.group("wcol")
        lit = m.group("lit")
        if not re.fullmatch(r"'[^']*'", lit):
            return None, "IllegalArgumentException: the uid must be one quoted ADQL string literal (got %s)" % lit
        uid = lit[1:-1]
        if not UID.match(uid):
            return None, "stand-in: %r is not a MOUS uid (uid://A.../X.../X...)" % uid
        return uid, None

    # --- DataLink -------------------------------------------------------------------------------------------
    def datalink_usage_error(self, message, status=400):
        self.failure("DataLink: " + message)
        body = self.archive.template("tap-error", message=escape("UsageFault: " + message))
        return self.send(status, body, TAP_CT)

    def datalink(self):
        params = self.params(("GET", "POST"))
        if params is None:
            return self.datalink_usage_error("DataLink sync accepts GET and POST, not %s" % self.command, 405)
        if isinstance(params, str):
            return self.datalink_usage_error(params)
        ids = [v for k, v in params if k == "ID"]
        unknown = sorted({k for k, _ in params} - {"ID", "RESPONSEFORMAT"})
        if unknown:
            return self.datalink_usage_error("unexpected parameter(s) %s" % ", ".join(unknown))
        fmts = [v for k, v in params if k == "RESPONSEFORMAT"]
        if any(f.replace(" ", "") not in DATALINK_FORMATS for f in fmts):
            return self.datalink_usage_error("unsupported RESPONSEFORMAT %r" % fmts)
        if len(ids) != 1 or not ids[0]:
            return self.datalink_usage_error("exactly one ID expected (got %d)" % len(ids))
        ident = ids[0]
        base = self.base_url()
        m = self.archive.mouses.get(ident)
        rows, services = "", ""
        if m is None:
            if not UID.match(ident):
                # The real service would answer (tar names are IDs of the nested DataLink); the agent never asks that.
                self.failure("DataLink: ID %r is not a MOUS uid (nested DataLink of a tar is not supported here)" % ident)
            rows = tr([ident, None, None, "NotFoundFault: %s" % ident, "#this", None, None, None, None])
        else:
            self.auth_mous = m
            readable = "true" if (m["dataRights"] == "Public" or (self.auth_info(m) or {}).get("tokenValid")) else "false"
            for link in m["links"]:
                sem, name = link["semantics"], link["file"]
                if sem == "#documentation":
                    desc = "Download documentation for ./%s|README." % m["mous"]
                elif sem == "#progenitor":
                    desc = "Download dataset of type: , and class: N/A."
                else:
                    desc = "Download dataset of type: null, and class: N/A."
                rows += tr([m["mous"], "%s/dataPortal/%s" % (base, quote(name)), None, None, sem, desc,
                            link["content_type"], os.path.getsize(link["path"]), readable])
                if sem in ("#this", "#auxiliary"):
                    sid = "DataLink." + name
                    rows += tr([m["mous"], None, sid, None, sem, None, DATALINK_CT, None, None])
                    url = "%s/datalink/sync?ID=%s" % (base, name)
                    services += self.archive.template("datalink-service", id=escape(sid), url=escape(url), url_len=len(url))
        body = self.archive.template("datalink-result", rows=rows, services=services)
        return self.send(200, body, DATALINK_CT)

    # --- files ----------------------------------------------------------------------------------------------
    def data_portal(self, name):
        if self.command not in ("GET", "HEAD"):
            self.failure("dataPortal: method %s" % self.command)
            return self.send(405, "405 Method Not Allowed\n", extra=[("Allow", "GET, HEAD")])
        entry = self.archive.files.get(name)
        if entry is None:
            self.failure("dataPortal: unknown file %r" % name)
            return self.send(404, "404 Not Found: %s\n" % name)
        m, path = entry
        self.auth_mous = m
        if m["dataRights"] == "Proprietary" and not (self.auth_info(m) or {}).get("tokenValid"):
            return self.send(401, "401 Unauthorized: %s is proprietary\n" % name,
                             extra=[("WWW-Authenticate", 'Bearer realm="ALMA"')])
        if self.archive.forbid_products and self.command == "GET" and re.search(r"_\d{3}_of_\d{3}\.tar$", name):
            self.failure("dataPortal: product tar %s fetched (a restore never needs it)" % name)
        size = os.path.getsize(path)
        start, end = 0, size - 1
        rng = self.headers.get("Range")
        if rng is not None:
            r = re.fullmatch(r"\s*bytes=(\d+)-(\d*)\s*", rng)
            if not r:
                self.failure("dataPortal: unsupported Range %r" % rng)
                return self.send(416, "", extra=[("Content-Range", "bytes */%d" % size)])
            start = int(r.group(1))
            if r.group(2):
                end = min(int(r.group(2)), size - 1)
            if start >= size or start > end:
                return self.send(416, "", extra=[("Content-Range", "bytes */%d" % size)])
        length = end - start + 1 if size else 0
        self.send_response(206 if rng is not None else 200)
        ctype = "text/plain" if name.endswith(".txt") else "application/x-tar"
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(length))
        self.send_header("Content-Disposition", 'attachment; filename="%s"' % name)
        self.send_header("Accept-Ranges", "bytes")
        if rng is not None:
            self.send_header("Content-Range", "bytes %d-%d/%d" % (start, end, size))
        self.end_headers()
        self.status_sent, self.bytes_sent = 206 if rng is not None else 200, 0
        if self.command == "HEAD":
            return
        try:
            with open(path, "rb") as f:
                f.seek(start)
                left = length
                while left > 0:
                    block = f.read(min(left, 1 << 20))
                    if not block:
                        break
                    self.wfile.write(block)
                    self.bytes_sent += len(block)
                    left -= len(block)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True


def write_atomic(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.rename(tmp, path)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--ready-file")
    ap.add_argument("--run-dir")
    ap.add_argument("--log")
    ap.add_argument("--templates", default=DEFAULT_TEMPLATES, help="directory with templates/ and obscore-columns.txt")
    ap.add_argument("--forbid-products", action="store_true")
    args = ap.parse_args()
    archive = Archive(args.config, args.templates, args.log, args.forbid_products)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    server.archive = archive
    port = server.server_address[1]
    url = "http://127.0.0.1:%d" % port
    if args.run_dir:
        os.makedirs(args.run_dir, exist_ok=True)
        write_atomic(os.path.join(args.run_dir, "pid"), "%d\n" % os.getpid())
        write_atomic(os.path.join(args.run_dir, "port"), "%d\n" % port)
    if args.ready_file:
        write_atomic(args.ready_file, json.dumps({"port": port, "url": url, "pid": os.getpid()}) + "\n")
    print("PORT %d" % port, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
    main()
