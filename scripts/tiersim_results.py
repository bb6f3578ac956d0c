"""Load tiersim's tables into pandas (Debian's python3 with h5py and pandas).

    import sys; sys.path.insert(0, "scripts")   # from the repository's root
    import tiersim_results as tr
    sweep = tr.table("out/sweep/summary.h5")          # a sweep's or study's table
    tokens = tr.table("out/run.h5", "/tokens")        # a run's per-step table
    ops = tr.table("out/run.h5", "/ops")              # a run's per-op table
    summary = tr.summary("out/run.h5")                # a run's summary: a Series
    sweep.attrs["units"]["tpot_ms_mean"]              # "ms"

Strings come back as str (HDF5 stores them as UTF-8), integer columns stay integers, a missing
value is NaN, and each table's units are in DataFrame.attrs["units"]. Without this module, one
line does the same for a table (less the units):
    pd.DataFrame(h5py.File(p)["summary"][()]).apply(
        lambda c: c.str.decode("utf-8") if c.dtype == object else c)
"""
import h5py
import pandas as pd


def table(path, name="/summary"):
    """The compound dataset `name` of a result or sweep file as a DataFrame."""
    with h5py.File(path, "r") as f:
        if name not in f or not isinstance(f[name], h5py.Dataset):
            raise KeyError(f"{path}: no table {name}")
        ds = f[name]
        df = pd.DataFrame(ds[()])
        units = {k[len("unit_"):]: _text(v) for k, v in ds.attrs.items() if k.startswith("unit_")}
    for c in df.columns:
        if df[c].dtype == object:
            df[c] = df[c].map(_text)
    df.attrs["units"] = units
    return df


def summary(path):
    """A run's /summary group (one scalar per metric) as a Series; units in .attrs["units"]."""
    with h5py.File(path, "r") as f:
        g = f["summary"]
        values = {k: float(g[k][()]) for k in g}
        units = {k: _text(g[k].attrs.get("unit", "")) for k in g}
    s = pd.Series(values)
    s.attrs["units"] = units
    return s


def _text(v):
    return v.decode("utf-8") if isinstance(v, bytes) else v
