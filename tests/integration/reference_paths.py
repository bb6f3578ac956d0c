#!/usr/bin/python3
"""The simulator's exact shortcuts change nothing: whole result files, bit for bit.

usage: reference_paths.py TIERSIM_BINARY SOURCE_DIR [--only NAME[,NAME...]]

A memory behind an ideal wire (or on the compute engine's SRAM socket) is served without a TLM
payload, and a staging buffer's wait is skipped when the compute engine's process is the design's
only one and no wall-time limit is set (docs/performance.md, "Fast paths and what they assume").
TIERSIM_REFERENCE_PATHS=1 turns both off. Each case below runs twice, with and without it, and
every dataset and attribute of the two result files must be equal (the wall times, the run's and
each node's, and the engines' count of waits skipped, and nothing else may differ); the waits are
skipped in the cases that should skip them and in no other, and never on the reference paths. The
cases cover what could tell the paths apart: one engine alone (the waits skipped), every rank of
identical tensor-parallel nodes (simulated as one class: one engine, skipping), every rank of a
pipeline simulated (engines waiting on each other), data-parallel replicas behind a front end, a
thermal model and the stats sampler (timed processes beside the engine), device faults (refusals
and retries), a CXL expander behind a pod's switch, a movement controller, SRAM regions, the
command-level HBM, and predicted serving passes.
"""
import argparse
import os
import subprocess
import sys
import tempfile

import h5py
import numpy as np



# What may differ: the wall times (the run's and each node's), and the count of waits skipped.
SKIPPED_ITEMS = {"wall_time_s", "waits_skipped"}


# Cases that must end by a limit, not by completing.
STOPPED_BY = {"serving_time_limit": "max_sim_time"}


def skipped_waits(f):
    """The compute engines' waits_skipped, summed."""
    total = 0

    def visit(name, obj):
        nonlocal total
        if isinstance(obj, h5py.Dataset) and name.endswith("/waits_skipped"):
            total += float(np.sum(obj[()]))

    f.visititems(visit)
    return total


def cases(src):
    c = lambda *names: [f"{src}/configs/{n}.textproto" for n in names]
    speed = c("hardware/h100_sxm", "models/llama3_70b", "software/cuda_events_per_kernel",
              "studies/speed_70b_tp8")
    serving = c("hardware/h100_sxm", "models/llama3_8b", "studies/serving_llama3_8b")
    pod_serving = c("hardware/h100_sxm", "pods/hgx_h100_nvswitch", "models/llama3_8b",
                    "studies/serving_llama3_8b")
    # name -> (files, overrides, whether the staging waits are skipped: one engine alone, no
    # movement controller, no thermal gate, no wall-time limit).
    return {
        "decode_alone": (speed, ["workload.decode.decode_steps=12"], True),
        "decode_fast_forward": (speed, ["workload.decode.decode_steps=40",
                                        "run.fast_forward.every_steps=8"], True),
        "every_rank_one_class": (
            c("hardware/h100_sxm", "pods/hgx_h100_nvswitch", "models/llama3_70b",
              "software/cuda_events_per_kernel", "studies/speed_70b_tp8"),
            ["workload.parallelism.simulate_ranks=SIMULATE_EVERY_RANK",
             "workload.decode.decode_steps=4", "workload.decode.batch_size=16"], True),
        "pipeline_every_rank": (
            c("hardware/h100_sxm", "pods/hgx_h100_nvswitch", "models/llama3_70b",
              "software/cuda_events_per_kernel", "studies/speed_70b_tp8"),
            ["workload.parallelism.tensor_parallel=2", "workload.parallelism.pipeline_parallel=4",
             "workload.parallelism.simulate_ranks=SIMULATE_EVERY_RANK",
             "workload.decode.decode_steps=3", "workload.decode.batch_size=16"], False),
        "serving_alone": (serving, ["workload.serving.poisson.requests=24"], True),
        "serving_predicted": (serving, ["workload.serving.poisson.requests=40",
                                        "run.fast_forward.every_steps=8",
                                        "run.fast_forward.warmup_steps=8"], True),
        "serving_time_limit": (serving, ["workload.serving.poisson.requests=40",
                                         "run.max_sim_time_ps=700000000000"], True),
        "replicas": (pod_serving, [
            "workload.serving.poisson.requests=24", "workload.serving.poisson.rate_per_s=20",
            "workload.parallelism.simulate_ranks=SIMULATE_EVERY_RANK",
            "workload.parallelism.data_parallel=2",
            "workload.serving.replica_routing=ROUTE_LEAST_REQUESTS"], False),
        "thermal_and_sampler": (
            c("hardware/h100_sxm", "hardware/fragments/h100_hbm_thermal_air", "models/llama3_8b",
              "studies/default"),
            ["workload.decode.decode_steps=24", "run.stats_interval_ps=2000000000"], False),
        "device_faults": (
            c("hardware/h100_sxm", "models/llama3_8b", "studies/default"),
            ["workload.decode.decode_steps=6", "run.stats_interval_ps=0",
             'system.faults[+]={name:"hbm_out" start_ps:3000000000 duration_ps:200000000 '
             'device_offline:"hbm"}',
             'system.faults[+]={name:"sram_out" start_ps:9000000000 duration_ps:50000000 '
             'device_offline:"sram"}'], True),
        "cxl_behind_a_switch": (
            c("hardware/h100_sxm", "pods/hgx_h100_nvswitch", "memory/cxl_type3_gen5_x8",
              "models/llama3_70b", "studies/kv_at_home_70b_tp8", "controllers/on_accelerator"),
            [f"system+=@{src}/configs/pools/own_cxl_expander.textproto",
             f"system.links[dma_cxl].serial=@{src}/configs/links/cxl2_x8.textproto",
             "workload.decode.decode_steps=4"], False),
        "page_cache_controller": (
            c("hardware/h100_sxm", "memory/ddr5_4800_8ch",
              "hardware/fragments/h100_weights_in_host_ddr", "models/llama3_8b",
              "studies/page_cache_llama3_8b"),
            ["workload.decode.decode_steps=4"], False),
        "sram_regions": (
            c("hardware/h100_sxm", "memory/hrm_sram_4x4", "hardware/fragments/h100_with_hrm",
              "models/llama3_2_1b", "software/cuda_events_per_kernel",
              "studies/wired_hrm_llama3_2_1b"),
            ["workload.decode.decode_steps=6"], False),
        "detailed_hbm": (
            c("hardware/h100_sxm", "memory/hbm3_5234_h100", "models/llama3_8b", "studies/default"),
            ["run.fidelity=DETAILED", "run.stats_interval_ps=0",
             "workload.decode.decode_steps=1", "workload.model.layers=1",
             "workload.decode.batch_size=1", "workload.decode.context_tokens=256"], True),
    }


def flatten(f):
    """path -> value for every dataset, and path@name -> value for every attribute."""
    out = {}

    def visit(name, obj):
        for k, v in obj.attrs.items():
            out[f"{name}@{k}"] = v
        if isinstance(obj, h5py.Dataset) and name.rsplit("/", 1)[-1] not in SKIPPED_ITEMS:
            out[name] = obj[()]

    f.visititems(visit)
    for k, v in f.attrs.items():
        out[f"@{k}"] = v
    return out


def equal(a, b):
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        if a.dtype != b.dtype or a.shape != b.shape:
            return False
        if a.dtype.kind == "f":
            return np.array_equal(a, b, equal_nan=True)
        return np.array_equal(a, b)
    return a == b or (isinstance(a, float) and a != a and b != b)


def run(tiersim, files, sets, out, reference):
    env = dict(os.environ)
    env.pop("TIERSIM_REFERENCE_PATHS", None)
    if reference:
        env["TIERSIM_REFERENCE_PATHS"] = "1"
    cmd = [tiersim, "run", *files]
    for s in sets:
        cmd += ["--set", s]
    subprocess.run(cmd + ["--quiet", "--out", out], check=True, env=env)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("tiersim")
    ap.add_argument("src")
    ap.add_argument("--only")
    args = ap.parse_args()
    all_cases = cases(args.src)
    names = args.only.split(",") if args.only else list(all_cases)
    failed = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            files, sets, skips = all_cases[name]
            fast, ref = os.path.join(tmp, name + "_fast.h5"), os.path.join(tmp, name + "_ref.h5")
            run(args.tiersim, files, sets, fast, False)
            run(args.tiersim, files, sets, ref, True)
            with h5py.File(fast, "r") as a, h5py.File(ref, "r") as b:
                fa, fb = flatten(a), flatten(b)
                skipped, ref_skipped = skipped_waits(a), skipped_waits(b)
            diff = sorted(k for k in set(fa) | set(fb)
                          if k not in fa or k not in fb or not equal(fa[k], fb[k]))
            problems = []
            if diff:
                problems.append(f"{len(diff)} of {len(fa)} items differ: {', '.join(diff[:8])}")
            if name in STOPPED_BY:
                with h5py.File(fast, "r") as a:
                    why = a["meta/stopped_by"][()]
                why = why.decode() if isinstance(why, bytes) else why
                if why != STOPPED_BY[name]:
                    problems.append(f"stopped by {why!r}, not {STOPPED_BY[name]!r}")
            if ref_skipped != 0:
                problems.append(f"{ref_skipped:.0f} waits skipped on the reference paths")
            if skips != (skipped > 0):
                problems.append(f"{skipped:.0f} waits skipped, expected "
                                f"{'some' if skips else 'none'}")
            if problems:
                failed.append(name)
                print(f"FAIL {name}: {'; '.join(problems)}")
            else:
                print(f"ok   {name} ({len(fa)} items, {skipped:.0f} waits skipped)")
    if failed:
        print(f"{len(failed)} of {len(names)} cases differ: {', '.join(failed)}")
        return 1
    print(f"all {len(names)} cases identical")
    return 0


if __name__ == "__main__":
    sys.exit(main())
