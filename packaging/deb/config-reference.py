#!/usr/bin/env python3
"""Prints the README's configuration table as an mdoc CONFIGURATION section, so the man page and the README
cannot disagree (packaging/deb/generate-manual.sh inserts it before EXIT STATUS)."""
import pathlib
import re
import sys

readme = pathlib.Path(sys.argv[1]).read_text()
section = readme.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
rows = [line for line in section.splitlines() if line.startswith("| `")]


def text(cell: str) -> str:
    cell = re.sub(r"\[([^\]]+)\]\([^)]+\)", r"\1", cell)   # links: their text
    cell = cell.replace("`", "").replace("**", "").replace("\\|", "|")
    cell = cell.replace("\\", "\\e")
    return "\n".join(("\\&" + l if l.startswith((".", "'")) else l) for l in cell.split("\n"))


print(".Sh CONFIGURATION")
print("One JSON file,")
print(".Fl -config Ar FILE ;")
print("every key is optional and unknown keys are errors (also inside")
print(".Cm notifications.smtp")
print("and")
print(".Cm casa.installations[] ) ;")
print("string settings that are choices are checked when the file is loaded. Keys, defaults and meanings:")
print(".Bl -tag -width Ds")
for row in rows:
    cells = [c.strip() for c in re.split(r"(?<!\\)\|", row)[1:-1]]
    key, default, meaning = cells[0], cells[1], " | ".join(cells[2:])
    print(".It Cm " + text(key).replace(" ", "\\ "))
    print("Default: " + text(default) + ".")
    print(text(meaning))
print(".El")
