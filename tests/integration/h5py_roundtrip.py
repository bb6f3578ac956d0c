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
            # Every stat says what a sample is.
            assert f["stats/hbm/bytes_read"].attrs["sampling"] == "cumulative"
            assert f["stats/hbm/utilization"].attrs["sampling"] == "average_since_start"
            assert f["stats/power/total"].attrs["sampling"] == "interval_mean"
        # The helper module: strings as str, units in attrs.
        sys.path.insert(0, os.path.join(src, "scripts"))
        import tiersim_results as tr
        ops = tr.table(out, "/ops")
        assert set(ops["bound_by"]) <= {"memory", "compute", "overhead"}, set(ops["bound_by"])
        s = tr.summary(out)
        assert s["decode_steps"] == 5.0 and s.attrs["units"]["tpot_ms_mean"] == "ms"
        # A sweep table: integer axes stay integers, a missing seed is NaN, units per column,
        # fragment-file axis values by their file names.
        spec = os.path.join(tmp, "sweep.textproto")
        with open(spec, "w") as f:
            f.write("name: \"rt\"\n"
                    "base: \"%s/configs/hardware/h100_sxm.textproto\"\n"
                    "base: \"%s/configs/models/llama3_2_1b.textproto\"\n"
                    "base: \"%s/configs/studies/default.textproto\"\n"
                    "set: \"workload.decode.decode_steps=2\"\n"
                    "axes { path: \"workload.decode.batch_size\" name: \"batch\" "
                    "values: [\"1\", \"2\"] }\n"
                    "axes { path: \"run\" name: \"run_settings\" values: [\"@%s\"] }\n"
                    % (src, src, src, os.path.join(tmp, "run_fragment.textproto")))
        with open(os.path.join(tmp, "run_fragment.textproto"), "w") as f:
            f.write("seed: 7\nfidelity: FAST\nmax_sim_time_ps: 0\nstats_interval_ps: 0\n"
                    "op_records: OP_RECORDS_NONE\n")
        subprocess.run([tiersim, "sweep", spec, "--out", os.path.join(tmp, "sw"), "--jobs", "2",
                        "--quiet"], check=True)
        t = tr.table(os.path.join(tmp, "sw", "summary.h5"))
        assert t["batch"].dtype.kind == "i", t.dtypes
        assert t["seed"].isna().all(), t["seed"]
        assert list(t["run_settings"]) == ["run_fragment", "run_fragment"], t["run_settings"]
        assert t.attrs["units"]["tpot_ms_mean"] == "ms", t.attrs["units"]
        assert (t["status"] == "ok").all()
        csv = pd.read_csv(os.path.join(tmp, "sw", "summary.csv"))
        assert csv["batch"].dtype.kind == "i" and csv["seed"].isna().all()
    print("h5py round trip ok")


if __name__ == "__main__":
    main()
