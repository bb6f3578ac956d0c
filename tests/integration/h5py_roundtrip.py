#!/usr/bin/python3
"""The result file as Python users read it: h5py for the layout, pandas for the tables.

usage: h5py_roundtrip.py TIERSIM_BINARY SOURCE_DIR
"""
import os
import subprocess
import sys
import tempfile

import h5py
import pandas as pd

REQUIRED = ["tpot_ms_mean", "tpot_ms_p50", "tpot_ms_p99", "tokens_per_s", "decode_steps",
            "hbm_bytes_per_token", "sram_bytes_per_token", "sim_time_s", "wall_time_s"]


def main():
    tiersim, src = sys.argv[1], sys.argv[2]
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "r.h5")
        subprocess.run([tiersim, "run",
                        f"{src}/configs/hardware/h100_sxm.textproto",
                        f"{src}/configs/models/llama3_8b.textproto",
                        f"{src}/configs/studies/default.textproto",
                        "--set", "workload.decode.decode_steps=5", "--quiet", "--out", out],
                       check=True)
        with h5py.File(out, "r") as f:
            summary = {k: float(f["summary"][k][()]) for k in f["summary"]}
            units = {k: f["summary"][k].attrs["unit"] for k in f["summary"]}
            for name in REQUIRED:
                assert name in summary, name
            assert units["tpot_ms_mean"] == "ms", units["tpot_ms_mean"]
            assert summary["decode_steps"] == 5.0
            config = f["meta/config"][()].decode()
            assert "llama3_8b" in config and "decode_steps: 5" in config, config[:200]
            tokens = pd.DataFrame(f["tokens"][()])
            assert list(tokens.columns) == [
                "step", "start_ps", "end_ps", "latency_ms", "tokens", "sequences", "tpot_ms"]
            assert len(tokens) == 5
            assert (tokens["end_ps"] > tokens["start_ps"]).all()
            assert abs(tokens["latency_ms"].mean() - summary["tpot_ms_mean"]) < 1e-9
            ops = pd.DataFrame(f["ops"][()])
            assert len(ops) == 5 * (1 + 32 * 11 + 2)
            assert set(ops["bound_by"].str.decode("utf-8")) <= {"memory", "compute", "overhead"}
            t = f["stats/time_ps"][()]
            hbm = f["stats/hbm/bytes_read"][()]
            assert len(t) == len(hbm) and len(t) >= 2
            assert f["stats/hbm/bytes_read"].attrs["unit"] == "bytes"
            assert (hbm[1:] >= hbm[:-1]).all()
    print("h5py round trip ok")


if __name__ == "__main__":
    main()
