"""casa_steps.safe_extract against the shared table of hostile archives (tests/data/malicious-archives.json, also run
against the agent's SafeArchive in Tests/DeliveryTests/MaliciousArchiveTests.swift): each is refused with nothing
written outside the target, and the target itself is left empty (all or nothing). Needs no CASA."""
import io
import json
import os
import subprocess
import sys
import tarfile

import pytest

import casa_steps

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TABLE = os.path.join(REPO, "tests", "data", "malicious-archives.json")
MAKE = os.path.join(REPO, "scripts", "make-malicious-archives.py")

with open(TABLE) as f:
    _DOC = json.load(f)
CASES = _DOC["cases"]
ACCEPTED = _DOC["accepted"]


def snapshot(root, excluded):
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        if dirpath == excluded or dirpath.startswith(excluded + os.sep):
            continue
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            if path == excluded:
                continue
            st = os.lstat(path)
            out[path] = (st.st_mode, st.st_size, st.st_nlink)
    return out


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_hostile_archive_refused(tmp_path, case):
    subprocess.run([sys.executable, MAKE, str(tmp_path), case["name"]], check=True)
    target = tmp_path / "outer" / "inner" / "target"
    target.mkdir(parents=True)
    outside = tmp_path / "outer" / "inner" / "outside.txt"
    outside.write_text("untouched\n")
    before = snapshot(str(tmp_path), str(target))
    with pytest.raises(casa_steps.StepError):
        casa_steps.safe_extract(str(tmp_path / (case["name"] + ".tgz")), str(target), limits=case.get("limits"))
    assert snapshot(str(tmp_path), str(target)) == before
    assert outside.read_text() == "untouched\n" and outside.stat().st_nlink == 1
    assert os.listdir(target) == []
    assert not os.path.exists("/tmp/dropbox-malicious-absolute.txt")
    assert not os.path.exists("/tmp/dropbox-malicious-through-link.txt")


@pytest.mark.parametrize("case", ACCEPTED, ids=[c["name"] for c in ACCEPTED])
def test_accepted_archive_extracts(tmp_path, case):
    # The same archives the agent's SafeArchive must accept (MaliciousArchiveTests.accepted): hard links to a file
    # extracted earlier are made, share its data, and count against the limits as copies (the case's limits are
    # exactly the copies' total: one byte less is refused).
    subprocess.run([sys.executable, MAKE, str(tmp_path), case["name"]], check=True)
    target = tmp_path / "target"
    target.mkdir()
    tgz = str(tmp_path / (case["name"] + ".tgz"))
    casa_steps.safe_extract(tgz, str(target), limits=case.get("limits"))
    for path, content in case["expect"].items():
        assert (target / path).read_text() == content
    inodes = {(target / path).stat().st_ino for path in case["expect"]}
    assert len(inodes) == 1, "hard links share their file"
    tighter = {k: v - 1 for k, v in case["limits"].items() if k == "maxTotalBytes"}
    other = tmp_path / "tighter"
    other.mkdir()
    with pytest.raises(casa_steps.StepError, match="expands to more than"):
        casa_steps.safe_extract(tgz, str(other), limits=dict(case["limits"], **tighter))
    assert os.listdir(str(other)) == []


def test_hard_link_whose_file_the_filter_skips_is_written_as_a_copy(tmp_path):
    subprocess.run([sys.executable, MAKE, str(tmp_path), "hardlinks-inside"], check=True)
    dest = tmp_path / "working"
    dest.mkdir()
    names = casa_steps.safe_extract(str(tmp_path / "hardlinks-inside.tgz"), str(dest),
                                    members_filter=lambda n: n.startswith("ms/sub"))
    assert names == ["ms/sub", "ms/sub/again"]
    assert (dest / "ms" / "sub" / "again").read_text() == "data"
    assert sorted(os.listdir(str(dest / "ms"))) == ["sub"]


@pytest.mark.parametrize("case, message", [
    ("hardlink-to-directory", r"h -> d, which is not a regular file an earlier member extracted"),
    ("hardlink-before-its-file", r"h -> f\.txt, which is not a regular file an earlier member extracted"),
    ("hardlink-to-replaced-file", r"h -> f, which is not a regular file an earlier member extracted"),
    ("hardlink-setuid", r"set-user-ID or set-group-ID file in hardlink-setuid\.tgz: h"),
    ("hardlink-counted-as-copy", r"expands to more than 10000 bytes"),
    ("hardlink-dotdot", r"unsafe hard link in hardlink-dotdot\.tgz: h -> \.\./outside\.txt"),
])
def test_hard_links_are_refused_with_the_reason(tmp_path, case, message):
    subprocess.run([sys.executable, MAKE, str(tmp_path), case], check=True)
    limits = next(c for c in CASES if c["name"] == case).get("limits")
    with pytest.raises(casa_steps.StepError, match=message):
        casa_steps.safe_extract(str(tmp_path / (case + ".tgz")), str(tmp_path), limits=limits)


def test_writing_through_an_existing_link_in_dest_is_refused(tmp_path):
    (tmp_path / "elsewhere").mkdir()
    dest = tmp_path / "working"
    dest.mkdir()
    os.symlink(str(tmp_path / "elsewhere"), str(dest / "x.ms"))
    tgz = tmp_path / "cal.tgz"
    with tarfile.open(str(tgz), "w:gz") as t:
        info = tarfile.TarInfo("x.ms/table.dat")
        info.size = 1
        t.addfile(info, io.BytesIO(b"x"))
    with pytest.raises(casa_steps.StepError, match="symbolic link"):
        casa_steps.safe_extract(str(tgz), str(dest))
    assert os.listdir(str(tmp_path / "elsewhere")) == []


def test_genuine_tables_extract_without_set_id_bits(tmp_path):
    tgz = tmp_path / "cal.tgz"
    with tarfile.open(str(tgz), "w:gz") as t:
        d = tarfile.TarInfo("x.ms.bcal.tbl")
        d.type, d.mode = tarfile.DIRTYPE, 0o2775  # set-gid directories are common on shared filesystems
        t.addfile(d)
        f = tarfile.TarInfo("x.ms.bcal.tbl/table.f0")
        f.size, f.mode = 4, 0o644
        t.addfile(f, io.BytesIO(b"data"))
        other = tarfile.TarInfo("y.ms.bcal.tbl/table.f0")
        other.size = 1
        t.addfile(other, io.BytesIO(b"y"))
    dest = tmp_path / "working"
    dest.mkdir()
    names = casa_steps.safe_extract(str(tgz), str(dest), members_filter=lambda n: n.startswith("x.ms"))
    assert names == ["x.ms.bcal.tbl", "x.ms.bcal.tbl/table.f0"]
    assert (dest / "x.ms.bcal.tbl" / "table.f0").read_bytes() == b"data"
    assert not (dest / "y.ms.bcal.tbl").exists()
    assert os.stat(str(dest / "x.ms.bcal.tbl")).st_mode & 0o6000 == 0


def test_limits_match_the_agent_defaults():
    # Sources/Delivery/Archive/ArchiveLimits.swift and the README's archive.limits rows say the same.
    swift = open(os.path.join(REPO, "Sources", "Delivery", "Archive", "ArchiveLimits.swift")).read()
    assert "maxEntries: Int = 100_000, maxTotalBytes: Int64 = 64 << 30, maxEntryBytes: Int64 = 64 << 30" in swift
    assert "maxExpansionRatio: Double = 200, ratioAllowanceBytes: Int64 = 64 << 20" in swift
    assert casa_steps.DEFAULT_LIMITS == {"maxEntries": 100000, "maxTotalBytes": 64 << 30, "maxEntryBytes": 64 << 30,
                                         "maxExpansionRatio": 200, "ratioAllowanceBytes": 64 << 20}


def _tgz(path, members):
    with tarfile.open(str(path), "w:gz") as t:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return str(path)


def _limits_file(tmp_path, doc):
    path = tmp_path / "archive-limits.json"
    path.write_text(json.dumps(doc))
    return str(path)


def test_archive_limits_file_gives_each_tarball_its_own_bounds(tmp_path):
    # The agent's file (CASAArchiveLimits): configured limits, and per tarball those bounded by its catalogued size.
    tgz = _tgz(tmp_path / "x.ms.flagversions.tgz", [("x.ms.flagversions/flags.Final", b"f" * 5000)])
    other = _tgz(tmp_path / "other.tgz", [("o/table.f0", b"o" * 5000)])
    limits_for = casa_steps.load_archive_limits(_limits_file(tmp_path, {
        "limits": {"maxEntries": 50, "maxTotalBytes": 1 << 20, "maxEntryBytes": 1 << 20, "maxExpansionRatio": 300,
                   "ratioAllowanceBytes": 1 << 20},
        "archives": {"x.ms.flagversions.tgz": {"maxEntries": 50, "maxTotalBytes": 4096, "maxEntryBytes": 4096,
                                               "maxExpansionRatio": 300, "ratioAllowanceBytes": 1 << 20}}}))
    assert limits_for(tgz)["maxTotalBytes"] == 4096
    assert limits_for(other)["maxTotalBytes"] == 1 << 20
    assert limits_for(other)["maxExpansionRatio"] == 300
    dest = tmp_path / "working"
    dest.mkdir()
    with pytest.raises(casa_steps.StepError, match=r"x\.ms\.flagversions\.tgz: .* is 5000 bytes, above the 4096-byte"):
        casa_steps.safe_extract(tgz, str(dest), limits=limits_for(tgz))
    assert os.listdir(str(dest)) == []
    assert casa_steps.safe_extract(other, str(dest), limits=limits_for(other)) == ["o/table.f0"]


def test_archive_limits_file_missing_keys_take_the_defaults(tmp_path):
    limits_for = casa_steps.load_archive_limits(_limits_file(tmp_path, {"limits": {"maxEntries": 7}}))
    assert limits_for("/any/cal.tgz") == dict(casa_steps.DEFAULT_LIMITS, maxEntries=7)


@pytest.mark.parametrize("doc, message", [
    ({"limits": {"maxTotalBytes": -1}}, r"maxTotalBytes must be a non-negative whole number"),
    ({"limits": {"maxEntries": 1.5}}, r"maxEntries must be a non-negative whole number"),
    ({"limits": {"maxEntries": True}}, r"maxEntries must be"),
    ({"limits": {"maxFiles": 3}}, r"unknown limit 'maxFiles'"),
    ({"limits": {}, "archives": {"a.tgz": {"maxExpansionRatio": "x"}}}, r"a\.tgz: maxExpansionRatio must be"),
    ({"limits": {}, "archives": {"../a.tgz": {}}}, r"is not a file name"),
    ({"limits": {}, "extra": 1}, r"unknown key\(s\) extra"),
    ([], r"expected \{"),
])
def test_archive_limits_file_refuses_what_the_agent_never_writes(tmp_path, doc, message):
    with pytest.raises(casa_steps.StepError, match=message):
        casa_steps.load_archive_limits(_limits_file(tmp_path, doc))


def test_archive_limits_file_unreadable(tmp_path):
    with pytest.raises(casa_steps.StepError, match=r"cannot read the archive limits"):
        casa_steps.load_archive_limits(str(tmp_path / "absent.json"))
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(casa_steps.StepError, match=r"cannot read the archive limits"):
        casa_steps.load_archive_limits(str(tmp_path / "bad.json"))


def test_restore_mous_reads_the_limits_file_from_argv():
    import restore_mous
    assert restore_mous.parse_args(["--parallel", "2", "--archive-limits", "/l.json", "/p.xml"]) == (2, "/p.xml", "/l.json")
    assert restore_mous.parse_args(["--archive-limits=/l.json", "/p.xml"])[1:] == ("/p.xml", "/l.json")
    assert restore_mous.parse_args(["/p.xml"])[1:] == ("/p.xml", None)
    assert restore_mous.parse_args(["--archive-limits", "/p.xml"]) is None
    assert restore_mous.parse_args(["--archive-limits=", "/p.xml"]) is None
    assert restore_mous.parse_args(["--limits", "x", "/p.xml"]) is None


def test_restore_flags_step_unpacks_with_the_limits_it_is_given(tmp_path):
    # restore_eb passes flags_limits here; a flag-versions tarball above them is refused before flagmanager runs.
    from conftest import CASA_DIR, casa_env
    tgz = _tgz(tmp_path / "x.ms.flagversions.tgz",
               [("x.ms.flagversions/FLAG_VERSION_LIST", b"Pipeline_Final : x\n"),
                ("x.ms.flagversions/flags.Pipeline_Final/table.f0", b"0")])
    args = {"vis": str(tmp_path / "x.ms"), "tgz": tgz, "limits": {"maxEntries": 1}}
    proc = subprocess.run([sys.executable, os.path.join(CASA_DIR, "casa_steps.py"), "restore_flags", json.dumps(args)],
                          cwd=str(tmp_path), env=casa_env(str(tmp_path / "home")), capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 1
    result = [line for line in proc.stdout.splitlines() if line.startswith(casa_steps.STEP_RESULT_PREFIX)]
    assert len(result) == 1
    assert json.loads(result[0][len(casa_steps.STEP_RESULT_PREFIX):]) == {
        "ok": False, "reason": "x.ms.flagversions.tgz has more than 1 entries"}
    assert not (tmp_path / "x.ms.flagversions").exists()
