"""Prints what a measurement set holds, as JSON, read with casatools (run with the CASA venv's python):
columns, rows, and per spectral window / field with rows: channels and row counts.
    inspect_ms.py MS [FIELD_NAME ...]   # row count also for the named fields only ("rowsForFields")"""
import json
import os
import sys

import numpy as np
from casatools import table

ms = sys.argv[1]
t = table()
t.open(ms)
columns = t.colnames()
rows = t.nrows()
ddi = t.getcol("DATA_DESC_ID")
field = t.getcol("FIELD_ID")
t.close()
t.open(os.path.join(ms, "DATA_DESCRIPTION"))
spw_of = t.getcol("SPECTRAL_WINDOW_ID")
t.close()
t.open(os.path.join(ms, "SPECTRAL_WINDOW"))
nchan = t.getcol("NUM_CHAN")
t.close()
t.open(os.path.join(ms, "FIELD"))
names = list(t.getcol("NAME"))
t.close()
spws = sorted(set(int(spw_of[d]) for d in np.unique(ddi)))
wanted = [names.index(n) for n in sys.argv[2:] if n in names]
print(json.dumps({
    "columns": columns, "rows": int(rows),
    "spws": {str(s): {"channels": int(nchan[s]), "rows": int(np.sum(spw_of[ddi] == s))} for s in spws},
    "fields": {names[f]: int(np.sum(field == f)) for f in sorted(set(int(x) for x in np.unique(field)))},
    "rowsForFields": int(np.sum(np.isin(field, wanted))) if wanted else None,
}))
