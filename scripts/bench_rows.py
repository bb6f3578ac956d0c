#!/usr/bin/env python3
"""The simulator-speed table as whole runs of the command-line tool (docs/performance.md).

    scripts/bench --rows [--repeat N] [--only NAME]...
    scripts/bench --compare REF_BUILD_DIR [--repeat N] [--only NAME]...

--rows times each row with this build's binaries; --compare runs every row with this build and
with a reference build (a directory holding its tiersim and tiersim_bench), alternating the two
N times in one session, and prints the medians and their ratio (reference / this: above 1 means
this build is faster). Machines here are shared: compare builds only within one run.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def cfg(*rel):
    return [os.path.join(REPO, r) for r in rel]


H100 = "configs/hardware/h100_sxm.textproto"
H200 = "configs/hardware/h200.textproto"

# Each row: a tiersim run (files, --set overrides) and what it reports. `unit` "s" reports the
# process's wall time; "TB/s" the simulated off-chip bytes per wall second; a "bench" row runs a
# Google Benchmark of tiersim_bench and reads one counter; a "ratio" row runs two configs back to
# back ("sets" added to the base's) and reports the first's wall time over the second's, the
# median of the repeats' pairs (both runs see about the same machine load).
# The every-rank rows: Llama-3-70B TP8 on the HGX pod, batch 64, 2k context, 64 steps.
EVERY_RANK_FILES = cfg(H100, "configs/pods/hgx_h100_nvswitch.textproto",
                       "configs/models/llama3_70b.textproto",
                       "configs/software/cuda_events_per_kernel.textproto",
                       "configs/studies/speed_70b_tp8.textproto")
EVERY_RANK_SETS = ["workload.decode.decode_steps=64", "run.op_records=OP_RECORDS_NONE"]

ROWS = [
    {"name": "decode_70b_tp8_256_steps", "what": "Llama-3-70B TP8, batch 64, 2k context, 256 steps",
     "files": cfg(H100, "configs/models/llama3_70b.textproto",
                  "configs/software/cuda_events_per_kernel.textproto",
                  "configs/studies/speed_70b_tp8.textproto"),
     "sets": [], "unit": "s", "target": 1.0},
    {"name": "decode_70b_tp8_256_steps_ff",
     "what": "the same with steady-state fast-forward, one step in 16 simulated (TPOT +0.03%)",
     "files": cfg(H100, "configs/models/llama3_70b.textproto",
                  "configs/software/cuda_events_per_kernel.textproto",
                  "configs/studies/speed_70b_tp8.textproto"),
     "sets": ["run.fast_forward.every_steps=16"], "unit": "s", "target": 1.0},
    {"name": "every_rank_70b_tp8_vs_shortcut",
     "what": "every rank simulated (8 identical nodes, one class) over the symmetric shortcut, Llama-3-70B TP8 on the HGX pod, batch 64, 2k context, 64 steps",
     "files": EVERY_RANK_FILES, "sets": EVERY_RANK_SETS,
     "ratio": [["workload.parallelism.simulate_ranks=SIMULATE_EVERY_RANK"], []],
     "unit": "ratio", "target": 3.0},
    {"name": "every_rank_70b_tp8_slow_node_vs_shortcut",
     "what": "the same with node 3's HBM at 0.45 of peak (two classes) over the shortcut",
     "files": EVERY_RANK_FILES, "sets": EVERY_RANK_SETS,
     "ratio": [["workload.parallelism.simulate_ranks=SIMULATE_EVERY_RANK",
                'system.pod.node_overrides[+]=name: "slow3" nodes: 3 system { components { '
                'name: "hbm" hbm { efficiency_fraction: 0.45 } } }'], []],
     "unit": "ratio", "target": 3.0},
    {"name": "every_rank_70b_tp8_apart_vs_shortcut",
     "what": "the same identical nodes simulated apart (merge_identical_ranks false: eight systems) over the shortcut",
     "files": EVERY_RANK_FILES, "sets": EVERY_RANK_SETS,
     "ratio": [["workload.parallelism.simulate_ranks=SIMULATE_EVERY_RANK",
                "workload.parallelism.merge_identical_ranks=false"], []],
     "unit": "ratio", "target": 8.0},
    {"name": "fast_8b_batch1_bytes", "what": "fast level, Llama-3-8B batch 1, simulated bytes per wall second",
     "files": cfg(H100, "configs/models/llama3_8b.textproto", "configs/studies/default.textproto"),
     "sets": ["workload.decode.decode_steps=512", "run.op_records=OP_RECORDS_NONE",
              "run.stats_interval_ps=0"],
     "unit": "TB/s", "target": 5.0, "higher_is_better": True},
    {"name": "serving_70b_fp8_h200_poisson", "what": "MLPerf-style server run: 3,000 Poisson arrivals, 70B FP8 on one H200",
     "files": cfg(H200, "configs/models/llama2_70b.textproto",
                  "configs/software/torch_compile_cudagraphs.textproto",
                  "bench/configs/serving_70b_fp8_h200_poisson.textproto"),
     "sets": [], "unit": "s", "target": 30.0, "slow": True},
    {"name": "serving_70b_fp8_h200_poisson_ff",
     "what": "the same with predicted passes (run.fast_forward, one pass in 16 simulated at least)",
     "files": cfg(H200, "configs/models/llama2_70b.textproto",
                  "configs/software/torch_compile_cudagraphs.textproto",
                  "bench/configs/serving_70b_fp8_h200_poisson.textproto"),
     "sets": ["run.fast_forward.every_steps=16"], "unit": "s", "target": 30.0, "slow": True},
    {"name": "serving_70b_fp8_tp2_100_clients", "what": "serving, 70B FP8 TP2 on H100, 100 closed-loop clients, 5000-in / 500-out",
     "files": cfg(H100, "configs/models/llama3_70b.textproto",
                  "configs/software/torch_compile_cudagraphs.textproto",
                  "bench/configs/serving_70b_fp8_tp2_100_clients.textproto"),
     "sets": [], "unit": "s", "target": 20.0, "slow": True},
    {"name": "serving_70b_fp8_tp2_100_clients_ff",
     "what": "the same with predicted passes (run.fast_forward, one pass in 16 simulated at least)",
     "files": cfg(H100, "configs/models/llama3_70b.textproto",
                  "configs/software/torch_compile_cudagraphs.textproto",
                  "bench/configs/serving_70b_fp8_tp2_100_clients.textproto"),
     "sets": ["run.fast_forward.every_steps=16"], "unit": "s", "target": 20.0, "slow": True},
    {"name": "pod_ep72_deepseek_v3_16_steps", "what": "DeepSeek-V3 EP72 (32 redundant experts) on a 72-node single-tier CPO pod, 64 sequences per rank, 16 steps, rate tolerance 0.01",
     "files": cfg(H200, "configs/models/deepseek_v3.textproto",
                  "configs/software/cuda_events_per_kernel.textproto",
                  "configs/studies/deepseek_v3_tp8.textproto"),
     "sets": ["system.pod+=@" + os.path.join(REPO, "configs/pods/single_tier_cpo.textproto"),
              "system.pod.nodes=72", "workload.parallelism.tensor_parallel=1",
              "workload.parallelism.expert_parallel=72",
              "workload.parallelism.redundant_experts=32", "workload.decode.batch_size=64",
              "workload.decode.decode_steps=16", "run.op_records=OP_RECORDS_NONE",
              "system.pod.rate_tolerance=0.01"],
     "unit": "s", "target": 60.0, "slow": True},
    {"name": "detailed_8b_one_step", "what": "DETAILED HBM decode, one Llama-3-8B step on H100 (batch 1, 1k context), every request at the command level",
     "files": cfg(H100, "configs/memory/hbm3_5234_h100.textproto",
                  "configs/models/llama3_8b.textproto", "configs/studies/default.textproto"),
     "sets": ["run.fidelity=DETAILED", "workload.decode.decode_steps=1"],
     "unit": "s", "target": 60.0, "slow": True},
    {"name": "detailed_8b_one_step_sampled", "what": "the same step, sampled: 2 warm-up + 10 measured requests of every 100 at the command level",
     "files": cfg(H100, "configs/memory/hbm3_5234_h100.textproto",
                  "configs/models/llama3_8b.textproto", "configs/studies/default.textproto"),
     "sets": ["run.fidelity=DETAILED", "workload.decode.decode_steps=1",
              "run.detailed_sampling.period_requests=100",
              "run.detailed_sampling.window_requests=10",
              "run.detailed_sampling.warmup_requests=2"],
     "unit": "s", "target": 60.0},
    {"name": "sweep_1000_points", "what": "1000-point sweep of the default decode on 2 cores (40 points run, x 25)",
     "sweep": "bench/configs/sweep_40_points.textproto", "points": 40, "per": 1000,
     "unit": "s", "target": 240.0},
    {"name": "hbm3_core_stream", "what": "command-level HBM3 core, stream, 32 B requests per wall second",
     "bench": "BM_DramStackStream", "counter": "sim_requests_per_wall_s", "unit": "M/s",
     "scale": 1e-6, "target": 3.0, "higher_is_better": True},
    {"name": "hbm3_core_random", "what": "command-level HBM3 core, random, 32 B requests per wall second",
     "bench": "BM_DramStackRandom", "counter": "sim_requests_per_wall_s", "unit": "M/s",
     "scale": 1e-6, "target": 1.0, "higher_is_better": True},
    {"name": "membench_vs_core", "what": "membench's pattern runner vs the bare core loop, stream, request rate ratio",
     "bench": "BM_MembenchStreamVsCore", "counter": "membench_vs_core", "unit": "ratio",
     "target": 0.8, "higher_is_better": True},
]
# Rows of the speed table with no benchmark yet (the feature they time is missing): printed so
# the table stays complete.
MISSING = []


def run_row(build, row, scratch, allow_missing=False):
    if "bench" in row:
        out = os.path.join(scratch, "bench.json")
        subprocess.run([os.path.join(build, "tiersim_bench"), "--benchmark_filter=^%s$" % row["bench"],
                        "--benchmark_out=" + out, "--benchmark_out_format=json"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # A reference build older than the benchmark matches nothing (and may write no file).
        found = []
        if os.path.exists(out) and os.path.getsize(out) > 0:
            with open(out) as f:
                found = json.load(f)["benchmarks"]
        if os.path.exists(out):
            os.remove(out)
        if not found:
            if allow_missing:  # only the --compare reference may predate a benchmark
                return float("nan")
            raise SystemExit("bench: %s has no benchmark %s" % (build, row["bench"]))
        return found[0][row["counter"]] * row.get("scale", 1.0)
    if "sweep" in row:
        out = os.path.join(scratch, "sweep")
        shutil.rmtree(out, ignore_errors=True)
        t0 = time.monotonic()
        subprocess.run([os.path.join(build, "tiersim"), "sweep", os.path.join(REPO, row["sweep"]),
                        "--out", out, "--jobs", "2", "--quiet"], check=True, cwd=REPO,
                       stdout=subprocess.DEVNULL)
        return (time.monotonic() - t0) * row["per"] / row["points"]
    h5 = os.path.join(scratch, "run.h5")

    def timed(sets):
        args = [os.path.join(build, "tiersim"), "run"] + row["files"]
        for s in sets:
            args += ["--set", s]
        args += ["--out", h5, "--quiet"]
        t0 = time.monotonic()
        subprocess.run(args, check=True, cwd=REPO, stdout=subprocess.DEVNULL)
        return time.monotonic() - t0

    if "ratio" in row:
        num, den = row["ratio"]
        return timed(row["sets"] + num) / timed(row["sets"] + den)
    wall = timed(row["sets"])
    if row["unit"] == "s":
        return wall
    rep = json.loads(subprocess.run([os.path.join(build, "tiersim"), "report", h5, "--json"],
                                    check=True, capture_output=True, text=True).stdout)
    return rep["hbm_bytes_per_token"] * rep["tokens_generated"] / wall / 1e12


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    mode = ap.add_mutually_exclusive_group(required=True)
    mode.add_argument("--rows", action="store_true", help="time every row with this build")
    mode.add_argument("--compare", metavar="REF_BUILD_DIR", help="and with a reference build")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--only", action="append", help="row name (repeatable)")
    ap.add_argument("--slow", action="store_true", help="include rows marked slow")
    ap.add_argument("--build", default=os.environ.get("TIERSIM_BUILD_DIR", os.path.join(REPO, "build")))
    a = ap.parse_args()
    names = {r["name"] for r in ROWS}
    for n in a.only or []:
        if n not in names:
            print("bench: no row %r; the rows:" % n, file=sys.stderr)
            for r in ROWS:
                print("  %-32s %s" % (r["name"], r["what"]), file=sys.stderr)
            return 2
    if a.repeat < 1:
        print("bench: --repeat must be at least 1", file=sys.stderr)
        return 2
    builds = [a.build] + ([a.compare] if a.compare else [])
    rows = [r for r in ROWS if (not a.only or r["name"] in a.only) and (a.slow or a.only or not r.get("slow"))]
    exes = {"tiersim_bench" if "bench" in r else "tiersim" for r in rows}
    for b in builds:
        for exe in sorted(exes):
            if not os.access(os.path.join(b, exe), os.X_OK):
                print("bench: %s has no executable %s" % (b, exe), file=sys.stderr)
                return 2
    with tempfile.TemporaryDirectory() as scratch:
        hdr = "%-42s %10s %10s %8s  %s" % ("row", "this", "reference" if a.compare else "target",
                                          "ratio" if a.compare else "", "unit")
        print(hdr)
        print("-" * len(hdr))
        for row in rows:
            got = {b: [] for b in builds}
            for _ in range(a.repeat):
                for b in builds:  # alternate: both builds see the same machine load
                    got[b].append(run_row(b, row, scratch, allow_missing=b == a.compare))
            this = statistics.median(got[a.build])
            if a.compare:
                ref = statistics.median(got[a.compare])
                # Speed-up of this build: time ratio ref/this, or rate ratio this/ref.
                ratio = this / ref if row.get("higher_is_better") else ref / this
                print("%-42s %10.3f %10.3f %7.2fx  %s" % (row["name"], this, ref, ratio, row["unit"]))
            else:
                ok = this >= row["target"] if row.get("higher_is_better") else this <= row["target"]
                print("%-42s %10.3f %10.3f %8s  %s" % (row["name"], this, row["target"],
                                                      "met" if ok else "not met", row["unit"]))
        if not a.only:
            for name, why in MISSING:
                print("%-42s %10s  (%s)" % (name, "-", why))
    return 0


if __name__ == "__main__":
    sys.exit(main())
