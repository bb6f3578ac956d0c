#!/usr/bin/python3
"""Runs the worked-example sweep and draws every plot kind: each PNG must exist and be a real
image (PNG signature, some size); bad input exits 2.

usage: plot_check.py TIERSIM_BINARY SOURCE_DIR
"""
import os
import subprocess
import sys
import tempfile


def check_png(path):
    with open(path, "rb") as f:
        head = f.read(8)
    assert head == b"\x89PNG\r\n\x1a\n", f"{path}: not a PNG"
    assert os.path.getsize(path) > 5000, f"{path}: suspiciously small"


def main(binary, src):
    plot = os.path.join(src, "scripts", "plot")
    with tempfile.TemporaryDirectory() as d:
        spec = os.path.join(src, "configs", "sweeps", "batch_context_h100.textproto")
        subprocess.run([binary, "sweep", spec, "--out", os.path.join(d, "sweep"), "--quiet"],
                       check=True)
        table = os.path.join(d, "sweep", "summary.csv")
        runs = [
            ["lines", table, "--x", "context", "--y", "tpot_ms_mean", "--group", "batch", "--logx",
             "--out", os.path.join(d, "lines.png")],
            ["heatmap", os.path.join(d, "sweep", "summary.h5"), "--x", "batch", "--y", "context",
             "--z", "tokens_per_s", "--out", os.path.join(d, "heat.png")],
            ["pareto", table, "--x", "tpot_ms_mean", "--x-lower-better", "--y", "tokens_per_s",
             "--label", "batch", "--out", os.path.join(d, "pareto.png")],
        ]
        for r in runs:
            subprocess.run([sys.executable, plot] + r, check=True)
            check_png(r[-1])
        result = os.path.join(d, "run.h5")
        subprocess.run([binary, "run", os.path.join(src, "configs/hardware/h100_sxm.textproto"),
                        os.path.join(src, "configs/models/llama3_8b.textproto"),
                        os.path.join(src, "configs/studies/default.textproto"),
                        "--set", "workload.decode.decode_steps=8",
                        "--set", "run.stats_interval_ps=5000000000", "--quiet", "--out", result],
                       check=True)
        subprocess.run([sys.executable, plot, "run", result, "--out", os.path.join(d, "run")],
                       check=True)
        for name in ("latency.png", "bytes.png", "stats.png"):
            check_png(os.path.join(d, "run", name))
        series = os.path.join(d, "series.png")
        subprocess.run([sys.executable, plot, "series", result + "=one", result + "=again",
                        "--stat", "hbm/bytes_read", "--title", "t", "--out", series], check=True)
        check_png(series)
        bad = subprocess.run([sys.executable, plot, "series", result, "--stat", "hbm/nope",
                              "--out", os.path.join(d, "bad_series.png")], capture_output=True)
        assert bad.returncode == 2, bad
        assert b"no stat hbm/nope" in bad.stderr, bad.stderr
        bad = subprocess.run([sys.executable, plot, "lines", table, "--x", "nope", "--y", "x",
                              "--out", os.path.join(d, "bad.png")], capture_output=True)
        assert bad.returncode == 2, bad
        assert b"no column 'nope'" in bad.stderr, bad.stderr
        assert not os.path.exists(os.path.join(d, "bad.png"))
    print("plots ok")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
