"""Prints what a measurement set holds, as JSON, read with casatools (run with the CASA venv's python):
columns, rows, and per spectral window / field with rows: channels and row counts.
    inspect_ms.py MS [FIELD_NAME ...]   # row count also for the named fields only ("rowsForFields")
The reader is casa/ms_contents.py, the one the derivation checks its products with."""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "casa"))

from ms_contents import contents  # noqa: E402

got = contents(sys.argv[1], sys.argv[2:])
got["spws"] = {str(s): v for s, v in got["spws"].items()}
print(json.dumps(got))
