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
    CASES = json.load(f)["cases"]


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
