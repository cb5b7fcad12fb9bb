"""What a measurement set holds, read with casatools: the one reader shared by the derivation's checks
(`derive_products.py`) and the tests (`tests/inspect_ms.py`), so a product is judged the same way in both.

    contents(ms, field_names=()) -> {
        "columns": [main table column names], "rows": <main table rows>,
        "spws": {<spw id>: {"channels": <NUM_CHAN>, "rows": <rows>, "name": <NAME>, "fields": {<field name>: <rows>}}}
                for the spws with rows,
        "fields": {<field name>: <rows>} for the fields with rows,
        "rowsForFields": <rows of the named fields> | None (no names given)}
"""
import os


def _column(ms, table, column):
    from casatools import table as tabletool
    t = tabletool()
    t.open(os.path.join(ms, table) if table else ms)
    try:
        return t.getcol(column) if t.nrows() else []
    finally:
        t.close()


def contents(ms, field_names=()):
    """The main table's columns and rows, and its rows per spectral window (with channels) and per field name."""
    import numpy as np
    from casatools import table as tabletool
    t = tabletool()
    t.open(ms)
    try:
        columns = list(t.colnames())
        rows = int(t.nrows())
        ddi = t.getcol("DATA_DESC_ID") if rows else np.zeros(0, dtype=int)
        field = t.getcol("FIELD_ID") if rows else np.zeros(0, dtype=int)
    finally:
        t.close()
    spw_of = np.asarray(_column(ms, "DATA_DESCRIPTION", "SPECTRAL_WINDOW_ID"), dtype=int)
    nchan = _column(ms, "SPECTRAL_WINDOW", "NUM_CHAN")
    spw_names = list(_column(ms, "SPECTRAL_WINDOW", "NAME"))
    names = list(_column(ms, "FIELD", "NAME"))
    spw_rows = spw_of[ddi] if rows else np.zeros(0, dtype=int)
    spws = sorted(set(int(s) for s in np.unique(spw_rows)))
    wanted = [names.index(n) for n in field_names if n in names]
    return {
        "columns": columns, "rows": rows,
        "spws": {s: {"channels": int(nchan[s]), "rows": int(np.sum(spw_rows == s)), "name": str(spw_names[s]),
                     "fields": {str(names[f]): int(np.sum((spw_rows == s) & (field == f)))
                                for f in sorted(set(int(x) for x in np.unique(field[spw_rows == s])))}}
                 for s in spws},
        "fields": {str(names[f]): int(np.sum(field == f)) for f in sorted(set(int(x) for x in np.unique(field)))},
        "rowsForFields": int(np.sum(np.isin(field, wanted))) if field_names else None,
    }
