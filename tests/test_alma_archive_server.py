"""The ALMA archive stand-in (scripts/services/alma_archive.py): its answers have the recorded real shapes, and it
checks what it is asked. Plain python3 + pytest; no CASA, no network."""
import io
import json
import os
import pathlib
import subprocess
import sys
import tarfile
import time
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts/services/alma_archive.py"
DATA = ROOT / "tests/data/alma-archive"
NS = "{http://www.ivoa.net/xml/VOTable/v1.3}"
PUBLIC = "uid://A001/X3f01/X1a5"
PRIVATE = "uid://A001/X3f01/X1b0"
PROJECT = "2019.1.00001.S"
TOKEN = "s3cret-token"
EBS = ["uid___A002_Xe1f219_X6d0b", "uid___A002_Xe1f219_X7ee8"]
SPEC_QUERY = ("SELECT DISTINCT member_ous_uid, group_ous_uid, proposal_id, data_rights, obs_release_date "
              "FROM ivoa.obscore WHERE member_ous_uid = '%s'")


def sanitized(uid):
    return uid.replace("uid://", "uid___").replace("/", "_")


def make_tar(path, members):
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as t:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 1700000000
            t.addfile(info, io.BytesIO(data))


def make_package(pkg, mous, gous="uid://A001/X3f01/X1a4", sous="uid://A001/X3f01/X1a3", ebs=EBS):
    pkg.mkdir(parents=True)
    m = sanitized(mous)
    member = f"{PROJECT}/science_goal.{sanitized(sous)}/group.{sanitized(gous)}/member.{m}"
    make_tar(pkg / f"{PROJECT}_{m}_auxiliary.tar", {
        f"{member}/calibration/member.{m}.hifa_calimage.pipeline_manifest.xml": b"<piperesults/>\n",
        f"{member}/calibration/member.{m}.session_1.caltables.tgz": os.urandom(3000),
        f"{member}/script/member.{m}.hifa_calimage.casa_piperestorescript.py": b"# restore\n"})
    make_tar(pkg / f"{PROJECT}_{m}_001_of_001.tar", {f"{member}/product/image.fits": os.urandom(5000)})
    for eb in ebs:
        make_tar(pkg / f"{PROJECT}_{eb}.asdm.sdm.tar", {f"{member}/raw/{eb}.asdm.sdm/ASDM.xml": os.urandom(20000)})
    (pkg / f"member.{m}.README.txt").write_text("README for %s\n" % mous)
    (pkg / "untarred-leftover").mkdir()  # ignored by the server


class Server:
    def __init__(self, tmp, extra=()):
        self.tmp = tmp
        self.ready = tmp / "ready.json"
        self.log = tmp / "requests.jsonl"
        self.proc = subprocess.Popen([sys.executable, str(SCRIPT), "--config", str(tmp / "config.json"), "--port", "0",
                                      "--ready-file", str(self.ready), "--log", str(self.log), *extra],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.time() + 15
        while not self.ready.exists():
            assert self.proc.poll() is None, self.proc.stderr.read().decode()
            assert time.time() < deadline, "server did not become ready"
            time.sleep(0.05)
        info = json.loads(self.ready.read_text())
        self.url, self.port = info["url"], info["port"]
        assert info["pid"] == self.proc.pid

    def request(self, path, method="GET", headers=None, data=None):
        req = urllib.request.Request(self.url + path, method=method, headers=headers or {}, data=data)
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read()

    def failures(self):
        return json.loads(self.request("/_failures")[2])

    def log_entries(self, at_least=0, timeout=5.0):
        """The request log; waits (with a deadline) for `at_least` entries: a request is logged just after its
        response is sent, so a client can read the log before the last line is written."""
        deadline = time.time() + timeout
        while True:
            entries = [json.loads(line) for line in self.log.read_text().splitlines()] if self.log.exists() else []
            if len(entries) >= at_least or time.time() > deadline:
                return entries
            time.sleep(0.02)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)
        self.proc.stdout.close()
        self.proc.stderr.close()


@pytest.fixture
def server(tmp_path):
    make_package(tmp_path / "pkg-public", PUBLIC)
    make_package(tmp_path / "pkg-private", PRIVATE, gous="uid://A001/X3f01/X1af", ebs=["uid___A002_Xe1f219_X9aa1"])
    config = {"mouses": [
        {"mous": PUBLIC, "project": PROJECT, "groupOus": "uid://A001/X3f01/X1a4", "dataRights": "Public",
         "releaseDate": "2024-09-01T00:00:00.000", "packageDir": "pkg-public"},
        {"mous": PRIVATE, "project": PROJECT, "groupOus": "uid://A001/X3f01/X1af", "dataRights": "Proprietary",
         "releaseDate": "2099-01-01T00:00:00.000", "packageDir": "pkg-private", "token": TOKEN}]}
    (tmp_path / "config.json").write_text(json.dumps(config))
    s = Server(tmp_path)
    yield s
    s.stop()


def tap_get(server, query, **extra):
    params = {"REQUEST": "doQuery", "LANG": "ADQL", "FORMAT": "votable", "QUERY": query, **extra}
    return server.request("/tap/sync?" + urllib.parse.urlencode(params))


def shape(elem):
    """Element tags and attribute names (not values, not text), recursively, in order."""
    return (elem.tag, tuple(sorted(elem.attrib)), tuple(shape(c) for c in elem if c.tag not in (NS + "TR", NS + "FIELD")))


def table_rows(root):
    fields = [f.get("name") for f in root.iter(NS + "FIELD")]
    return [dict(zip(fields, [td.text for td in tr.findall(NS + "TD")])) for tr in root.iter(NS + "TR")]


# --- TAP --------------------------------------------------------------------------------------------------------

def test_tap_answer_has_the_recorded_shape(server):
    status, headers, body = tap_get(server, SPEC_QUERY % PUBLIC)
    assert status == 200, body
    assert headers["Content-Type"] == "application/x-votable+xml"
    assert body.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n<VOTABLE xmlns="http://www.ivoa.net/xml/VOTable/v1.3" '
                           b'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" version="1.4">')
    root = ET.fromstring(body)
    recorded = ET.parse(DATA / "recorded/alma-tap-shapes-trimmed.xml").getroot()
    assert shape(root) == shape(recorded)
    assert root.attrib == recorded.attrib
    res = root.find(NS + "RESOURCE")
    assert res.get("type") == "results"
    infos = {i.get("name"): i.get("value") for i in res.findall(NS + "INFO")}
    assert infos["QUERY_STATUS"] == "OK" and infos["placeholder"] == "ignore"
    assert infos["QUERY"] == SPEC_QUERY % PUBLIC
    assert [c.tag for c in res] == [NS + "INFO"] * 3 + [NS + "TABLE", NS + "INFO"]
    fields = root.findall(f"{NS}RESOURCE/{NS}TABLE/{NS}FIELD")
    assert [f.get("name") for f in fields] == ["member_ous_uid", "group_ous_uid", "proposal_id", "data_rights", "obs_release_date"]
    assert all(f.get("datatype") == "char" and f.find(NS + "DESCRIPTION").text for f in fields)
    assert [f.get("arraysize") for f in fields] == ["64*", "64*", "64*", "11", "*"]
    # Every FIELD attribute used here is one the recording's FIELDs use too.
    recorded_attrs = set().union(*(f.attrib for f in recorded.iter(NS + "FIELD")))
    assert set().union(*(f.attrib for f in fields)) <= recorded_attrs
    assert table_rows(root) == [{"member_ous_uid": PUBLIC, "group_ous_uid": "uid://A001/X3f01/X1a4", "proposal_id": PROJECT,
                                 "data_rights": "Public", "obs_release_date": "2024-09-01T00:00:00.000"}]
    assert server.failures() == []


def test_tap_normalises_whitespace_and_keyword_case_and_accepts_post(server):
    query = ("  select   distinct member_ous_uid,group_ous_uid ,\n proposal_id, data_rights, obs_release_date\n"
             "from ivoa.ObsCore\twhere member_ous_uid='%s' " % PRIVATE)
    data = urllib.parse.urlencode({"REQUEST": "doQuery", "LANG": "ADQL", "RESPONSEFORMAT": "votable", "QUERY": query}).encode()
    status, _, body = server.request("/tap/sync", "POST", {"Content-Type": "application/x-www-form-urlencoded"}, data)
    assert status == 200, body
    rows = table_rows(ET.fromstring(body))
    assert rows[0]["data_rights"] == "Proprietary" and rows[0]["member_ous_uid"] == PRIVATE
    assert server.failures() == []


def test_tap_unknown_mous_is_zero_rows_not_a_failure(server):
    status, _, body = tap_get(server, SPEC_QUERY % "uid://A001/X999/X1")
    assert status == 200
    root = ET.fromstring(body)
    assert table_rows(root) == []
    assert root.find(f"{NS}RESOURCE/{NS}TABLE/{NS}DATA/{NS}TABLEDATA") is not None
    assert server.failures() == []


@pytest.mark.parametrize("query", [
    "SELECT * FROM ivoa.obscore WHERE member_ous_uid = '%s'" % PUBLIC,
    "SELECT DISTINCT member_ous_uid, group_ous_uid, proposal_id, data_rights, no_such_column FROM ivoa.obscore WHERE member_ous_uid = '%s'" % PUBLIC,
    "SELECT DISTINCT member_ous_uid, group_ous_uid, proposal_id, data_rights, obs_release_date FROM ivoa.obscore WHERE member_ous_uid = %s" % PUBLIC,
    "SELECT DISTINCT member_ous_uid, group_ous_uid, proposal_id, data_rights, obs_release_date FROM ivoa.obscore WHERE member_ous_uid = '%s' OR 1=1" % PUBLIC,
    "SELECT DISTINCT member_ous_uid, group_ous_uid, proposal_id, data_rights, obs_release_date FROM ivoa.caom WHERE member_ous_uid = '%s'" % PUBLIC,
    "SELECT DISTINCT member_ous_uid, proposal_id FROM ivoa.obscore WHERE member_ous_uid = '%s'" % PUBLIC,
])
def test_bad_adql_is_a_tap_error_and_a_recorded_failure(server, query):
    status, headers, body = tap_get(server, query)
    assert status == 400
    root = ET.fromstring(body)
    res = root.find(NS + "RESOURCE")
    assert root.get("version") == "1.4" and res.get("type") == "results"
    info = res.find(NS + "INFO")
    assert (info.get("name"), info.get("value")) == ("QUERY_STATUS", "ERROR") and info.text
    failures = server.failures()
    assert len(failures) == 1 and failures[0]["what"].startswith("TAP:")


@pytest.mark.parametrize("params", [
    {"REQUEST": "doQuery", "LANG": "PQL"},
    {"REQUEST": "getCapabilities", "LANG": "ADQL"},
    {"REQUEST": "doQuery", "LANG": "ADQL", "FORMAT": "csv"},
    {"REQUEST": "doQuery", "LANG": "ADQL", "PHASE": "RUN"},
])
def test_tap_parameters_are_checked(server, params):
    status, _, _ = server.request("/tap/sync?" + urllib.parse.urlencode({**params, "QUERY": SPEC_QUERY % PUBLIC}))
    assert status == 400
    assert len(server.failures()) == 1


# --- DataLink ---------------------------------------------------------------------------------------------------

def test_datalink_rows_semantics_urls_and_lengths(server, tmp_path):
    status, headers, body = server.request("/datalink/sync?ID=" + urllib.parse.quote(PUBLIC, safe=""))
    assert status == 200, body
    assert headers["Content-Type"] == "application/x-votable+xml;content=datalink"
    root = ET.fromstring(body)
    recorded = ET.parse(DATA / "recorded/alma-datalink.xml").getroot()
    assert shape(root) == shape(recorded)
    assert root.attrib == recorded.attrib
    ours = [ET.tostring(f) for f in root.iter(NS + "FIELD")]
    assert ours == [ET.tostring(f) for f in recorded.iter(NS + "FIELD")]
    rows = table_rows(root)
    m = sanitized(PUBLIC)
    files = [r for r in rows if r["access_url"]]
    assert [(r["semantics"], r["access_url"].rsplit("/", 1)[1]) for r in files] == [
        ("#documentation", f"member.{m}.README.txt"),
        ("#this", f"{PROJECT}_{m}_001_of_001.tar"),
        ("#auxiliary", f"{PROJECT}_{m}_auxiliary.tar"),
        ("#progenitor", f"{PROJECT}_{EBS[0]}.asdm.sdm.tar"),
        ("#progenitor", f"{PROJECT}_{EBS[1]}.asdm.sdm.tar")]
    for r in files:
        assert r["ID"] == PUBLIC and r["error_message"] is None and r["service_def"] is None and r["readable"] == "true"
        assert r["access_url"] == server.url + "/dataPortal/" + r["access_url"].rsplit("/", 1)[1]
        name = r["access_url"].rsplit("/", 1)[1]
        assert int(r["content_length"]) == (tmp_path / "pkg-public" / name).stat().st_size
        assert r["content_type"] == ("text/plain" if name.endswith(".txt") else "application/x-tar")
    nested = [r for r in rows if r["service_def"]]
    assert [(r["semantics"], r["service_def"]) for r in nested] == [
        ("#this", f"DataLink.{PROJECT}_{m}_001_of_001.tar"), ("#auxiliary", f"DataLink.{PROJECT}_{m}_auxiliary.tar")]
    assert all(r["content_type"] == "application/x-votable+xml;content=datalink" and r["access_url"] is None for r in nested)
    services = root.findall(NS + "RESOURCE")[1:]
    assert [s.get("ID") for s in services] == [r["service_def"] for r in nested]
    assert all(s.get("type") == "meta" and s.get("utype") == "adhoc:service" for s in services)
    for s in services:
        url = [p for p in s.findall(NS + "PARAM") if p.get("name") == "accessURL"][0]
        assert int(url.get("arraysize")) == len(url.get("value"))
    # Each listed file is served with the advertised length.
    for r in files:
        status, headers, _ = server.request(urllib.parse.urlsplit(r["access_url"]).path, "HEAD")
        assert status == 200 and headers["Content-Length"] == r["content_length"]
    assert server.failures() == []


def test_datalink_unknown_mous_is_the_error_row(server):
    status, _, body = server.request("/datalink/sync?ID=" + urllib.parse.quote("uid://A001/X999/X1", safe=""))
    assert status == 200
    rows = table_rows(ET.fromstring(body))
    assert len(rows) == 1
    row = rows[0]
    assert row["ID"] == "uid://A001/X999/X1" and row["error_message"].startswith("NotFoundFault: ")
    assert row["access_url"] is None and row["service_def"] is None and row["semantics"] == "#this"
    assert server.failures() == []


@pytest.mark.parametrize("query", ["", "ID=%s&ID=%s" % (PUBLIC, PRIVATE), "ID=%s&MAXREC=3" % PUBLIC, "uid=%s" % PUBLIC])
def test_datalink_wrong_parameters_are_400_and_failures(server, query):
    status, _, body = server.request("/datalink/sync?" + query)
    assert status == 400
    info = ET.fromstring(body).find(f"{NS}RESOURCE/{NS}INFO")
    assert info.get("value") == "ERROR"
    assert len(server.failures()) == 1


def test_datalink_proprietary_readable_only_with_token(server):
    path = "/datalink/sync?ID=" + urllib.parse.quote(PRIVATE, safe="")
    rows = table_rows(ET.fromstring(server.request(path)[2]))
    assert {r["readable"] for r in rows if r["access_url"]} == {"false"}
    rows = table_rows(ET.fromstring(server.request(path, headers={"Authorization": "Bearer " + TOKEN})[2]))
    assert {r["readable"] for r in rows if r["access_url"]} == {"true"}


# --- files ------------------------------------------------------------------------------------------------------

def test_download_head_and_range_resume(server, tmp_path):
    name = f"{PROJECT}_{sanitized(PUBLIC)}_auxiliary.tar"
    whole = (tmp_path / "pkg-public" / name).read_bytes()
    status, headers, body = server.request("/dataPortal/" + name, "HEAD")
    assert status == 200 and body == b""
    assert headers["Content-Length"] == str(len(whole))
    assert headers["Content-Disposition"] == 'attachment; filename="%s"' % name
    assert headers["Accept-Ranges"] == "bytes"
    status, headers, body = server.request("/dataPortal/" + name)
    assert status == 200 and body == whole
    status, headers, body = server.request("/dataPortal/" + name, headers={"Range": "bytes=1000-"})
    assert status == 206 and body == whole[1000:]
    assert headers["Content-Range"] == "bytes 1000-%d/%d" % (len(whole) - 1, len(whole))
    assert headers["Content-Length"] == str(len(whole) - 1000)
    status, headers, _ = server.request("/dataPortal/" + name, headers={"Range": "bytes=%d-" % len(whole)})
    assert status == 416 and headers["Content-Range"] == "bytes */%d" % len(whole)
    assert tarfile.open(fileobj=io.BytesIO(whole)).getnames()[0].startswith(PROJECT + "/science_goal.")
    assert server.failures() == []


def test_proprietary_files_need_the_bearer_token(server):
    name = f"{PROJECT}_{sanitized(PRIVATE)}_auxiliary.tar"
    status, headers, _ = server.request("/dataPortal/" + name)
    assert status == 401 and headers["WWW-Authenticate"].startswith("Bearer")
    assert server.request("/dataPortal/" + name, headers={"Authorization": "Bearer wrong"})[0] == 401
    status, _, body = server.request("/dataPortal/" + name, headers={"Authorization": "Bearer " + TOKEN})
    assert status == 200 and len(body) > 0
    # Public files need no token.
    assert server.request(f"/dataPortal/member.{sanitized(PUBLIC)}.README.txt")[0] == 200
    assert server.failures() == []


def test_request_log_and_unexpected_paths(server):
    aux = f"{PROJECT}_{sanitized(PUBLIC)}_auxiliary.tar"
    server.request("/dataPortal/" + aux, headers={"Authorization": "Bearer " + TOKEN, "Range": "bytes=10-"})
    assert server.request("/dataPortal/nope.tar")[0] == 404
    assert server.request("/sia2/query?ID=x")[0] == 404
    entries = server.log_entries(at_least=3)
    assert [(e["method"], e["path"], e["status"]) for e in entries] == [
        ("GET", "/dataPortal/" + aux, 206), ("GET", "/dataPortal/nope.tar", 404), ("GET", "/sia2/query", 404)]
    assert entries[0]["headers"]["range"] == "bytes=10-"
    assert entries[0]["headers"]["authorization"] == {"scheme": "Bearer", "tokenValid": True}
    assert TOKEN not in server.log.read_text()
    assert entries[2]["query"] == [["ID", "x"]]
    # What e2e tests assert: the product tar was never fetched.
    assert not any(e["path"].endswith("_001_of_001.tar") for e in entries)
    failures = server.failures()
    assert [f["request"]["path"] for f in failures] == ["/dataPortal/nope.tar", "/sia2/query"]


def test_forbid_products_records_a_failure(tmp_path):
    make_package(tmp_path / "pkg", PUBLIC)
    (tmp_path / "config.json").write_text(json.dumps([
        {"mous": PUBLIC, "project": PROJECT, "groupOus": "uid://A001/X3f01/X1a4", "dataRights": "Public",
         "releaseDate": "2024-09-01T00:00:00.000", "packageDir": "pkg"}]))
    s = Server(tmp_path, ["--forbid-products"])
    try:
        name = f"{PROJECT}_{sanitized(PUBLIC)}_001_of_001.tar"
        assert s.request("/dataPortal/" + name, "HEAD")[0] == 200
        assert s.failures() == []
        assert s.request("/dataPortal/" + name)[0] == 200
        assert len(s.failures()) == 1
    finally:
        s.stop()


# --- VOSI availability and token checks (what `dropbox-agent check` asks) -----------------------------------

def test_availability_is_a_vosi_document(server):
    status, headers, body = server.request("/tap/availability")
    assert status == 200 and headers["Content-Type"].startswith("text/xml")
    root = ET.fromstring(body)
    vosi = "{http://www.ivoa.net/xml/VOSIAvailability/v1.0}"
    assert root.tag == vosi + "availability"
    assert root.find(vosi + "available").text == "true"
    assert server.request("/tap/availability", headers={"Authorization": "Bearer " + TOKEN})[0] == 200
    assert server.failures() == []


@pytest.mark.parametrize("path", ["/tap/availability", "/datalink/sync?ID=" + urllib.parse.quote(PUBLIC, safe="")])
def test_an_unknown_bearer_token_is_refused_with_invalid_token(server, path):
    status, headers, _ = server.request(path, headers={"Authorization": "Bearer expired-token"})
    assert status == 401
    assert headers["WWW-Authenticate"].startswith("Bearer") and 'error="invalid_token"' in headers["WWW-Authenticate"]
    # No token at all is anonymous access, not an error.
    assert server.request(path)[0] == 200
    assert server.failures() == []
