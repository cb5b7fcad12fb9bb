"""The fixture's ALMA download packages (OUTDIR/packages/, issue 8): layouts the agent's package reader and the fake
archive server rely on. Names follow the shared package spec; contents are the store's files."""
import hashlib
import importlib.util
import os
import tarfile
import xml.etree.ElementTree as ET

import pytest

from conftest import CASA_DIR, load
from pprgen import sanitize

import ppr as pprmod

MOUS_A, MOUS_B = "uid://A001/X3f01/X1a5", "uid://A001/X3f01/X1b0"
PROJECT = "2023.1.00042.S"
SOUS, GOUS = "uid://A001/X3f01/X1a3", "uid://A001/X3f01/X1a4"
VARIANTS = {"member", "compact", "untarred", "manual-cal", "semipass", "truncated", "mous-b"}
MTIME = 1709900000


def packages(fixture_dir):
    _, fx = load(fixture_dir)
    return fx["packages"]["variants"]


def member_path(mous):
    return "%s/science_goal.%s/group.%s/member.%s" % (PROJECT, sanitize(SOUS), sanitize(GOUS), sanitize(mous))


def tar_files(path):
    """{member name: bytes} of the regular files of a tar, and the TarInfo list."""
    with tarfile.open(path, "r:") as tf:  # plain tar: "r:" refuses compressed input
        infos = tf.getmembers()
        return {ti.name: tf.extractfile(ti).read() for ti in infos if ti.isfile()}, infos


def store_bytes(fixture_dir, name):
    with open(os.path.join(fixture_dir, "store", name), "rb") as f:
        return f.read()


def rel_files(infos_or_names, prefix):
    """Names below prefix, relative; every other name must be one of prefix's parent directories."""
    names = [i.name if hasattr(i, "name") else i for i in infos_or_names]
    assert all(n.startswith(prefix) or prefix.startswith(n.rstrip("/") + "/") for n in names), names
    return sorted(n[len(prefix):] for n in names if n.startswith(prefix))


def aux_of(fixture_dir, variant):
    v = packages(fixture_dir)[variant]
    return tar_files(os.path.join(fixture_dir, v["directory"], v["auxTar"]))


def expected_calibration(oussid, disks, sessions, naming):
    caltables = {("member.%s.s%d.caltables.tgz" % (oussid, n) if naming == "compact"
                  else "member.%s.session_%d.caltables.tgz" % (oussid, n)): "%s.session_%d.caltables.tgz" % (oussid, n)
                 for n in sessions}
    manifest = ("member.%s.hifa_calimage.calimage.pipeline_manifest.xml" if naming == "compact"
                else "member.%s.hifa_calimage.pipeline_manifest.xml") % oussid
    out = dict(caltables)
    out[manifest] = "%s.hifa_calimage.pipeline_manifest.xml" % oussid
    out["member.%s.hifa_calimage.auxproducts.tgz" % oussid] = "%s.hifa_calimage.auxproducts.tgz" % oussid
    for d in disks:
        for suffix in (".ms.flagversions.tgz", ".ms.calapply.txt"):
            out[d + suffix] = d + suffix
    return out  # package name -> store name


def test_variants_recorded(fixture_dir):
    pk = packages(fixture_dir)
    assert set(pk) == VARIANTS
    for name, v in pk.items():
        d = os.path.join(fixture_dir, v["directory"])
        assert v["directory"] == "packages/" + name and os.path.isdir(d)
        assert (v["project"], v["sous"], v["gous"]) == (PROJECT, SOUS, GOUS)
        assert v["mous"] == (MOUS_B if name == "mous-b" else MOUS_A)
        assert v["memberPath"] == member_path(v["mous"])
        assert v["restorable"] == (name in ("member", "compact", "untarred"))
        assert (v["expectedError"] is None) == v["restorable"]
        top = sorted(os.listdir(d))
        assert v["files"] == {n: os.path.getsize(os.path.join(d, n)) for n in top if os.path.isfile(os.path.join(d, n))}
        tars = [t for t in [v["auxTar"], v["productTar"]] + v["rawTars"] if t]
        assert sorted(tars + [v["readme"]]) == sorted(v["files"])
        assert v["readme"] == "member.%s.README.txt" % sanitize(v["mous"])
    assert pk["manual-cal"]["expectedError"] == "manuallyCalibrated"
    assert pk["semipass"]["expectedError"] == "notRestorable"
    assert pk["truncated"]["expectedError"] == "truncated"
    assert pk["mous-b"]["expectedError"] == "manifestMissingSession"
    assert pk["mous-b"]["expectedFailure"] == "manifest has no caltables for session_3"


def test_tar_names_and_plain_deterministic_tars(fixture_dir):
    pk = packages(fixture_dir)
    for name in ("member", "compact", "manual-cal", "mous-b"):
        v = pk[name]
        oussid = sanitize(v["mous"])
        serial = "X2" if name == "mous-b" else "X1"
        assert v["auxTar"] == "%s_%s_auxiliary.tar" % (PROJECT, oussid)
        assert v["productTar"] == "%s_%s_001_of_001.tar" % (PROJECT, oussid)
        assert v["rawTars"] == ["%s_uid___A002_Xb1e2a0_%s.asdm.sdm.tar" % (PROJECT, serial),
                                "%s_uid___A002_Xb1f3c4_%s.asdm.sdm.tar" % (PROJECT, serial)]
        for t in [v["auxTar"], v["productTar"]] + v["rawTars"]:
            path = os.path.join(fixture_dir, v["directory"], t)
            with open(path, "rb") as f:
                assert f.read(2) != b"\x1f\x8b", "%s must be a plain tar" % t
            _, infos = tar_files(path)
            rel_files(infos, v["memberPath"] + "/") or pytest.fail("empty %s" % t)
            for ti in infos:
                assert ti.name.split("/")[0] == PROJECT
                assert (ti.uid, ti.gid, ti.mtime) == (0, 0, MTIME)
                assert ti.isdir() or ti.isfile()
                assert ti.mode == (0o755 if ti.isdir() else 0o644), ti.name


def test_member_aux_layout_and_contents(fixture_dir):
    _, fx = load(fixture_dir)
    for variant, mous in (("member", MOUS_A), ("mous-b", MOUS_B)):
        files, infos = aux_of(fixture_dir, variant)
        oussid = sanitize(mous)
        mfx = next(m for m in fx["mouses"] if m["mous"] == mous)
        disks = [d for s in sorted(mfx["sessions"]) for d in mfx["sessions"][s]]
        sessions = [1, 3] if mfx["restorable"] else [1]
        cal = expected_calibration(oussid, disks, sessions, "member")
        prefix = member_path(mous) + "/"
        expect = {"calibration/" + n for n in cal} | {
            "script/member.%s.hifa_calimage.casa_piperestorescript.py" % oussid,
            "script/member.%s.hifa_calimage.pprequest.xml" % oussid,
            "script/member.%s.scriptForPI.py" % oussid,
            "log/member.%s.casa-20240307-120000.log" % oussid,
            "qa/member.%s.qa2_report.html" % oussid}
        assert set(rel_files(files, prefix)) == expect
        assert {d for d in rel_files([i for i in infos if i.isdir()], prefix)} == {
            "calibration", "script", "log", "qa"}
        for pkg_name, store_name in cal.items():
            assert files[prefix + "calibration/" + pkg_name] == store_bytes(fixture_dir, store_name), pkg_name
        assert (files[prefix + "script/member.%s.hifa_calimage.casa_piperestorescript.py" % oussid]
                == store_bytes(fixture_dir, "%s.hifa_calimage.casa_piperestorescript.py" % oussid))
        log = files[prefix + "log/member.%s.casa-20240307-120000.log" % oussid].decode()
        assert all(len(ln.split("\t")) == 4 for ln in log.splitlines())


def test_manifest_inside_keeps_pipeline_names(fixture_dir):
    for variant in ("member", "compact"):
        files, _ = aux_of(fixture_dir, variant)
        oussid = sanitize(MOUS_A)
        [manifest] = [n for n in files if n.endswith("pipeline_manifest.xml")]
        ous = ET.fromstring(files[manifest]).find("ous")
        assert ous.get("name") == oussid
        names = [s.find("caltables").get("name") for s in ous.findall("session")]
        assert names == ["%s.session_1.caltables.tgz" % oussid, "%s.session_3.caltables.tgz" % oussid]
        assert ous.find("aux_products_file").get("name") == "%s.hifa_calimage.auxproducts.tgz" % oussid
        assert b"member." not in files[manifest]


def test_compact_naming(fixture_dir):
    _, fx = load(fixture_dir)
    files, _ = aux_of(fixture_dir, "compact")
    oussid = sanitize(MOUS_A)
    prefix = member_path(MOUS_A) + "/"
    mfx = next(m for m in fx["mouses"] if m["mous"] == MOUS_A)
    disks = [d for s in sorted(mfx["sessions"]) for d in mfx["sessions"][s]]
    cal = expected_calibration(oussid, disks, [1, 3], "compact")
    assert "member.%s.s1.caltables.tgz" % oussid in cal
    assert set(rel_files([n for n in files if "/calibration/" in n], prefix + "calibration/")) == set(cal)
    for pkg_name, store_name in cal.items():
        assert files[prefix + "calibration/" + pkg_name] == store_bytes(fixture_dir, store_name)
    scripts = rel_files([n for n in files if "/script/" in n], prefix + "script/")
    assert scripts == ["member.%s.hifa_calimage.casa_piperestorescript.py" % oussid,
                       "member.%s.scriptForPI.py" % oussid]
    assert not any(n.endswith("pprequest.xml") for n in files)


def test_calibration_ppr(fixture_dir):
    files, _ = aux_of(fixture_dir, "member")
    oussid = sanitize(MOUS_A)
    text = files[member_path(MOUS_A) + "/script/member.%s.hifa_calimage.pprequest.xml" % oussid]
    p = pprmod.parse_text(text)
    assert p["OUSStatusRef"]["entityId"] == MOUS_A
    assert p["ObsUnitSetRef"] == {"entityId": "uid://A001/X3f01/X1a0", "entityTypeName": "ObsProject",
                                  "partId": "X1573098450"}
    assert p["ProjectStatusRef"]["entityId"] == "uid://A001/X3f01/X1a1"
    assert p["ProcedureTitle"] == "hifa_calimage"
    assert [p["intents"]["SESSION_%d" % n] for n in (1, 2, 3)] == [
        "uid://A002/Xb1e2a0/X1", "", "uid://A002/Xb1f3c4/X1"]
    assert [(a["ExecBlockId"], a["AsdmDiskName"], a["session"]) for a in p["asdms"]] == [
        ("uid://A002/Xb1e2a0/X1", "uid___A002_Xb1e2a0_X1", "session_1"),
        ("uid://A002/Xb1f3c4/X1", "uid___A002_Xb1f3c4_X1", "session_3")]
    assert p["RelativePath"].endswith("/MOUS_" + oussid)
    assert p["commands"][0]["command"] == "hifa_importdata" and p["commands"][-1]["command"] == "hifa_exportdata"
    root = ET.fromstring(text)
    local = {el.tag.split("}")[-1]: el for el in root.iter()}
    assert local["SchedBlockRef"].get("entityId") == "uid://A001/X3f01/X1a6"
    assert local["SBStatusRef"].get("entityId") == "uid://A001/X3f01/X1a7"
    assert local["SBTitle"].text == "Demo_a_03_TM1"


def test_raw_and_product_tars(fixture_dir):
    _, fx = load(fixture_dir)
    for variant, mous, serial in (("member", MOUS_A, "X1"), ("mous-b", MOUS_B, "X2")):
        v = packages(fixture_dir)[variant]
        prefix = member_path(mous) + "/"
        for raw in v["rawTars"]:
            disk = raw[len(PROJECT) + 1:-len(".asdm.sdm.tar")]
            assert disk.endswith("_" + serial)
            files, infos = tar_files(os.path.join(fixture_dir, v["directory"], raw))
            got = {n[len(prefix + "raw/" + disk + ".asdm.sdm/"):]: b for n, b in files.items()}
            assert all(n.startswith(prefix + "raw/" + disk + ".asdm.sdm/") for n in files)
            with tarfile.open(os.path.join(fixture_dir, "store", disk + ".asdm.sdm.tar.gz")) as tf:
                want = {ti.name[len(disk) + 1:]: tf.extractfile(ti).read() for ti in tf.getmembers() if ti.isfile()}
            assert "ASDM.xml" in got and got == want
        files, _ = tar_files(os.path.join(fixture_dir, v["directory"], v["productTar"]))
        image = "%s.s12_0.Demo_target_sci.spw0_1.cont.I.pbcor.fits" % sanitize(mous)
        assert list(files) == [prefix + "product/member." + image]
        assert files[prefix + "product/member." + image] == store_bytes(fixture_dir, image)
        readme = open(os.path.join(fixture_dir, v["directory"], v["readme"])).read()
        assert "scriptForPI.py" in readme and all(t in readme for t in v["rawTars"] + [v["auxTar"]])


def test_untarred_tree(fixture_dir):
    pk = packages(fixture_dir)
    src, v = pk["member"], pk["untarred"]
    assert v["untarred"] and v["untarredFrom"] == "packages/member"
    assert v["untarredTars"] == [src["auxTar"], src["productTar"]] + src["rawTars"]
    root = os.path.join(fixture_dir, v["directory"])
    assert sorted(os.listdir(root)) == [PROJECT, src["readme"]]
    want = {}
    for t in v["untarredTars"]:
        want.update(tar_files(os.path.join(fixture_dir, src["directory"], t))[0])
    got = {}
    for dirpath, _, names in os.walk(root):
        for n in names:
            path = os.path.join(dirpath, n)
            rel = os.path.relpath(path, root)
            assert not n.endswith(".tar")
            if rel != src["readme"]:
                with open(path, "rb") as f:
                    got[rel] = f.read()
    assert got == want
    member = os.path.join(root, v["memberPath"])
    assert sorted(os.listdir(member)) == ["calibration", "log", "product", "qa", "raw", "script"]
    assert sorted(os.listdir(os.path.join(member, "raw"))) == [os.path.basename(a) for a in v["asdmDirs"]]
    for a in v["asdmDirs"]:
        assert os.path.isfile(os.path.join(member, a, "ASDM.xml"))


def test_manual_cal_package(fixture_dir):
    files, _ = aux_of(fixture_dir, "manual-cal")
    oussid = sanitize(MOUS_A)
    prefix = member_path(MOUS_A) + "/"
    names = rel_files(files, prefix)
    assert [n for n in names if n.startswith("script/")] == [
        "script/member.%s.scriptForCalibration.py" % oussid, "script/member.%s.scriptForPI.py" % oussid]
    cal = [n for n in names if n.startswith("calibration/")]
    assert cal and not any(s in n for n in cal for s in ("caltables", "manifest", "calapply", "flagversions"))
    v = packages(fixture_dir)["manual-cal"]
    assert len(v["rawTars"]) == 2 and v["productTar"]


def test_semipass_shell(fixture_dir):
    v = packages(fixture_dir)["semipass"]
    assert v["rawTars"] == [] and v["productTar"] is None
    assert sorted(v["files"]) == sorted([v["auxTar"], v["readme"]])
    files, infos = aux_of(fixture_dir, "semipass")
    oussid = sanitize(MOUS_A)
    assert rel_files(files, member_path(MOUS_A) + "/") == [
        "qa/member.%s.qa2_report.html" % oussid, "script/member.%s.scriptForPI.py" % oussid]


def test_truncated_raw_tar(fixture_dir):
    pk = packages(fixture_dir)
    v, full = pk["truncated"], pk["member"]
    cut = v["truncatedTar"]
    assert cut == full["rawTars"][0]
    whole = os.path.getsize(os.path.join(fixture_dir, full["directory"], cut))
    size = os.path.getsize(os.path.join(fixture_dir, v["directory"], cut))
    assert v["fullSize"] == whole and v["truncatedSize"] == size == int(whole * 0.6)
    with open(os.path.join(fixture_dir, v["directory"], cut), "rb") as f:
        head = f.read()
    with open(os.path.join(fixture_dir, full["directory"], cut), "rb") as f:
        assert f.read()[:size] == head
    with pytest.raises((tarfile.ReadError, EOFError, OSError)):
        with tarfile.open(os.path.join(fixture_dir, v["directory"], cut), "r:") as tf:
            for ti in tf:
                if ti.isfile():
                    tf.extractfile(ti).read()
    for n in v["files"]:
        if n != cut:
            a = open(os.path.join(fixture_dir, v["directory"], n), "rb").read()
            assert a == open(os.path.join(fixture_dir, full["directory"], n), "rb").read(), n


def test_packages_reproducible_from_store(fixture_dir, tmp_path):
    """The packages are a pure function of the store: rebuilding them gives the same bytes."""
    spec = importlib.util.spec_from_file_location("make_fixture_for_test", os.path.join(CASA_DIR, "make_fixture.py"))
    mf = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mf)
    summary = mf.write_packages(str(tmp_path), os.path.join(fixture_dir, "store"), str(tmp_path / "stage"))
    _, fx = load(fixture_dir)
    assert summary == fx["packages"]

    def digest(root):
        out = {}
        for dirpath, _, names in os.walk(root):
            for n in names:
                with open(os.path.join(dirpath, n), "rb") as f:
                    out[os.path.relpath(os.path.join(dirpath, n), root)] = hashlib.sha256(f.read()).hexdigest()
        return out
    assert digest(tmp_path / "packages") == digest(os.path.join(fixture_dir, "packages"))
