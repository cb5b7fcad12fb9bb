"""The fixture is what the agent's tests rely on: catalogue consistent with the store, real product names."""
import json
import os
import re
import subprocess
import sys
import tarfile
import zlib

import pytest

from conftest import CASA_DIR, casa_env, load, ppr_sessions
from pprgen import sanitize


def crc32(path):
    with open(path, "rb") as f:
        return zlib.crc32(f.read()) & 0xffffffff


def test_catalog_matches_store(fixture_dir):
    cat, _ = load(fixture_dir)
    assert cat["schema"] == "dropbox-agent/catalog/v1"
    store = os.path.join(fixture_dir, "store")
    named = set()
    for m in cat["mouses"]:
        files = [p for p in m["products"]] + [eb["asdm"] for eb in m["execBlocks"] if "asdm" in eb]
        for f in files:
            path = os.path.join(store, f["ngasFileId"])
            assert os.path.getsize(path) == f["size"]
            assert int(f["checksum"]) & 0xffffffff == crc32(path)
            assert f["checksumVariant"] == "crc32"
            named.add(f["ngasFileId"])
        classes = {p["fileClass"] for p in m["products"]}
        assert {"calibration", "science", "script"} <= classes
        assert not any(re.search(r"scriptFor.*Cal", p["ngasFileId"]) for p in m["products"])
    assert named == set(os.listdir(store))


def test_sessions_and_qa0(fixture_dir):
    cat, fx = load(fixture_dir)
    serials = {"uid://A001/X3f01/X1a5": ["X1"], "uid://A001/X3f01/X1b0": ["X2"], "uid://A001/X3f01/X1c0": ["X3", "X4"]}
    assert sorted(m["mous"] for m in cat["mouses"]) == sorted(serials)
    for m in cat["mouses"]:
        ss = serials[m["mous"]]
        assert ppr_sessions(m) == [["uid___A002_Xb1e2a0_" + s for s in ss], [], ["uid___A002_Xb1f3c4_" + s for s in ss]]
        fail = [eb for eb in m["execBlocks"] if eb["qa0"] == "Fail"]
        assert len(fail) == 1 and "asdm" not in fail[0]
        for eb in m["execBlocks"]:
            assert eb["endTime"] < "2025-08-01"
    assert [eb["session"] for eb in fx["execBlocks"]] == ["session_1", "session_2", "session_3"]


def test_asdm_tarballs_have_one_top_level_dir(fixture_dir):
    _, fx = load(fixture_dir)
    for eb in fx["execBlocks"]:
        if eb["qa0"] != "Pass":
            continue
        with tarfile.open(os.path.join(fixture_dir, "store", eb["asdmFileId"])) as tf:
            tops = {n.split("/")[0] for n in tf.getnames()}
            assert tops == {eb["asdmDiskName"]}
            assert eb["asdmDiskName"] + "/ASDM.xml" in tf.getnames()
            asdm_xml = tf.extractfile(eb["asdmDiskName"] + "/ASDM.xml").read().decode("latin-1")
            assert eb["uid"] in asdm_xml
        assert eb["asdmDiskName"] == sanitize(eb["uid"])


def test_products_have_pipeline_names_and_content(fixture_dir):
    cat, fx = load(fixture_dir)
    store = os.path.join(fixture_dir, "store")
    a = next(m for m in fx["mouses"] if m["key"] == "A")
    assert set(a["sessions"]) == {"session_1", "session_3"}
    for eb in fx["execBlocks"]:
        if eb["qa0"] != "Pass":
            continue
        vis = eb["asdmDiskName"] + ".ms"
        with open(os.path.join(store, vis + ".calapply.txt")) as f:
            text = f.read()
        assert text.splitlines()[0] == "# Apply file for %s" % vis
        assert re.search(r"intent='PHASE'", text) and re.search(r"intent='TARGET'", text)
        with tarfile.open(os.path.join(store, vis + ".flagversions.tgz")) as tf:
            names = tf.getnames()
            assert vis + ".flagversions/flags.Pipeline_Final/table.dat" in names
            fvl = tf.extractfile(vis + ".flagversions/FLAG_VERSION_LIST").read().decode()
            assert fvl == "Pipeline_Final : Final pipeline flags\n"
        caltables = "%s.%s.caltables.tgz" % (a["oussid"], eb["session"])
        with tarfile.open(os.path.join(store, caltables)) as tf:
            tops = {n.split("/")[0] for n in tf.getnames()}
            assert tops and all(t.startswith(vis + ".hifa_") and t.endswith(".tbl") for t in tops)
    with tarfile.open(os.path.join(store, "%s.hifa_calimage.auxproducts.tgz" % a["oussid"])) as tf:
        assert {"flux.csv", "antennapos.csv", "cont.dat"} <= set(tf.getnames())


def test_manifests(fixture_dir):
    import xml.etree.ElementTree as ET
    cat, fx = load(fixture_dir)
    store = os.path.join(fixture_dir, "store")
    for m in fx["mouses"]:
        ous = ET.parse(os.path.join(store, m["manifest"])).getroot().find("ous")
        assert ous.get("name") == m["oussid"]
        assert ous.find("casaversion").get("name") and ous.find("pipeline_version").get("name")
        assert ous.find("procedure_name").get("name") == "hifa_calimage"
        assert ous.find("aux_products_file").get("name") == "%s.hifa_calimage.auxproducts.tgz" % m["oussid"]
        sessions = {s.get("name"): s for s in ous.findall("session")}
        assert set(sessions) == {"session_1", "session_3"}
        for name, s in sessions.items():
            cal = s.find("caltables")
            if m["restorable"] or name != "session_3":
                assert cal.get("name") == "%s.%s.caltables.tgz" % (m["oussid"], name)
                assert os.path.exists(os.path.join(store, cal.get("name")))
            else:
                assert cal is None
            asdm = s.find("asdm")
            assert asdm.get("name").endswith(".ms")
            assert asdm.find("finalflags").get("name") == asdm.get("name") + ".flagversions.tgz"
            assert asdm.find("applycmds").get("name") == asdm.get("name") + ".calapply.txt"
    b = next(m for m in fx["mouses"] if m["key"] == "B")
    assert b["expectedFailure"] == "manifest has no caltables for session_3"
    # An EB belongs to one SB and so to one MOUS: B's EBs are its own.
    ebs = [{eb["uid"] for eb in m["execBlocks"]} for m in cat["mouses"]]
    for i in range(len(ebs)):
        for j in range(i + 1, len(ebs)):
            assert not ebs[i] & ebs[j]
    # The four-EB MOUS: two EBs per session, each MS with the reference of the EB whose data it carries.
    c = next(m for m in fx["mouses"] if m["key"] == "C")
    assert [len(d) for d in c["sessions"].values()] == [2, 2] and len(c["referenceOf"]) == 4
    for ms, ref in c["referenceOf"].items():
        assert os.path.isdir(os.path.join(fixture_dir, "reference", ref + ".ms")), ref


INSPECT_SPWS = """
import json, sys
import numpy as np
from casatools import msmetadata, table
from ms_contents import contents
ms = sys.argv[1]
got = contents(ms)
md = msmetadata()
md.open(ms)
intents = {i: sorted(int(s) for s in md.spwsforintent(i)) for i in md.intents()}
md.close()
t = table()
t.open(ms)
same = {}
for ddi in (0, 2):
    q = t.query("DATA_DESC_ID == %d" % ddi)
    same[ddi] = bool(np.array_equal(q.getcol("CORRECTED_DATA"), q.getcol("DATA")))
    q.close()
t.close()
print(json.dumps({"spws": {str(k): v for k, v in got["spws"].items()}, "intents": intents, "correctedIsData": same}))
"""


def test_each_reference_ms_has_a_non_science_spw_left_uncalibrated(fixture_dir, tmp_path):
    """As in real ALMA data, each EB carries a spectral window that is not science: the channel-average spw of
    baseband 1 (`#CH_AVG`, one channel, in every scan with that scan's intents, the average of spw 0). The
    calibration applies to the science spws only, so there its CORRECTED_DATA is its DATA."""
    _, fx = load(fixture_dir)
    refs = [os.path.join(fixture_dir, eb["referenceMs"]) for eb in fx["execBlocks"] if "referenceMs" in eb]
    assert refs
    for ms in refs:
        p = subprocess.run([sys.executable, "-c", INSPECT_SPWS, ms], capture_output=True, text=True, cwd=str(tmp_path),
                           env=dict(casa_env(str(tmp_path / "home")), PYTHONPATH=CASA_DIR), timeout=300)
        assert p.returncode == 0, p.stderr[-2000:]
        got = json.loads(p.stdout.strip().splitlines()[-1])
        spws = got["spws"]
        assert {s: v["name"].rsplit("#", 1)[-1] for s, v in spws.items()} == {"0": "FULL_RES", "1": "FULL_RES", "2": "CH_AVG"}
        assert [spws[s]["channels"] for s in ("0", "1", "2")] == [16, 16, 1]
        assert spws["2"]["fields"] == spws["0"]["fields"], "observed in every scan, like the science spws"
        assert all(2 in v for v in got["intents"].values()), got["intents"]
        assert got["correctedIsData"] == {"0": False, "2": True}, "only the science spws are calibrated"
