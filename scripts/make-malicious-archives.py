#!/usr/bin/env python3
"""Builds the hostile tar archives described in tests/data/malicious-archives.json (its "cases", refused, and its
"accepted", which every extractor must extract).

    make-malicious-archives.py [TABLE] OUTDIR [CASE...]

writes OUTDIR/<case>.tgz for every case (or the named ones). Zero-filled members are streamed, never held in
memory. Used by the Swift tests (SafeArchive) and by casa/tests (casa_steps.safe_extract): one table, both sides.
"""
import io
import json
import os
import sys
import tarfile

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_TABLE = os.path.join(HERE, "..", "tests", "data", "malicious-archives.json")
TYPES = {"file": tarfile.REGTYPE, "dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE, "hardlink": tarfile.LNKTYPE,
         "chr": tarfile.CHRTYPE, "blk": tarfile.BLKTYPE, "fifo": tarfile.FIFOTYPE}


class Zeros(io.RawIOBase):
    """`size` zero bytes, read in blocks."""

    def __init__(self, size):
        self.left = size

    def readable(self):
        return True

    def readinto(self, buffer):
        n = min(len(buffer), self.left)
        buffer[:n] = bytes(n)
        self.left -= n
        return n


def expand(entries):
    for e in entries:
        for i in range(e.get("repeat", 1)):
            yield dict(e, name=e["name"] % i) if "repeat" in e else e


def write_case(case, path):
    with tarfile.open(path, "w:gz", format=tarfile.PAX_FORMAT) as tar:
        for e in expand(case["entries"]):
            info = tarfile.TarInfo(e["name"])
            info.type = TYPES[e["type"]]
            info.linkname = e.get("linkname", "")
            info.mode = int(e["mode"], 8) if "mode" in e else (0o755 if e["type"] == "dir" else 0o644)
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            if e["type"] in ("chr", "blk"):
                info.devmajor, info.devminor = 1, 3
            data = None
            if e["type"] == "file":
                if "zeros" in e:
                    info.size, data = e["zeros"], io.BufferedReader(Zeros(e["zeros"]), 1 << 20)
                else:
                    raw = e.get("data", "").encode()
                    info.size, data = len(raw), io.BytesIO(raw)
            tar.addfile(info, data)


def main(argv):
    table = DEFAULT_TABLE
    if len(argv) >= 2 and argv[0].endswith(".json"):
        table, argv = argv[0], argv[1:]
    if not argv:
        sys.exit(__doc__)
    outdir, wanted = argv[0], set(argv[1:])
    os.makedirs(outdir, exist_ok=True)
    with open(table) as f:
        doc = json.load(f)
    cases = doc["cases"] + doc.get("accepted", [])
    for case in cases:
        if not wanted or case["name"] in wanted:
            write_case(case, os.path.join(outdir, case["name"] + ".tgz"))


if __name__ == "__main__":
    main(sys.argv[1:])
