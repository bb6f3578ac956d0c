#!/usr/bin/python3
"""Regression inputs for the classes of bad input that once crashed, hung or gave a silent
wrong result. Each case runs the tiersim binary on an input built here and checks the contract:
exit code 2 with a message naming the problem (or a correct result), never a signal, a hang,
exit code 1 for bad input, or exit 0 with a wrong figure.

usage: regressions.py TIERSIM_BINARY SOURCE_DIR [CASE_SUBSTRING]
"""
import os
import socket
import stat
import struct
import subprocess
import sys
import tempfile

import h5py

TIMEOUT_S = 120


class Failure(Exception):
    pass


class Suite:
    def __init__(self, tiersim, src, tmp):
        self.tiersim, self.src, self.tmp = tiersim, src, tmp
        self.base = [f"{src}/configs/hardware/h100_sxm.textproto",
                     f"{src}/configs/models/llama3_8b.textproto",
                     f"{src}/configs/studies/default.textproto",
                     "--set", "workload.decode.decode_steps=2",
                     "--set", "workload.model.layers=2"]

    def path(self, name):
        return os.path.join(self.tmp, name)

    def write(self, name, text):
        p = self.path(name)
        with open(p, "w" if isinstance(text, str) else "wb") as f:
            f.write(text)
        return p

    def run(self, args, code, needle=None):
        try:
            r = subprocess.run([self.tiersim] + args, capture_output=True, text=True,
                               errors="replace", timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise Failure(f"hung (no exit within {TIMEOUT_S} s)")
        if r.returncode < 0:
            raise Failure(f"killed by signal {-r.returncode}: {r.stderr[-500:]}")
        if r.returncode != code:
            raise Failure(f"exit code {r.returncode}, expected {code}: {r.stderr[-800:]}")
        if needle is not None and needle not in r.stderr:
            raise Failure(f"stderr lacks {needle!r}: {r.stderr[-800:]}")
        if code == 2 and len(r.stderr) > 20000:
            raise Failure(f"a message of {len(r.stderr)} characters")
        return r

    def result(self, name="r.h5", extra=()):
        out = self.path(name)
        self.run(["run"] + self.base + list(extra) + ["--quiet", "--out", out], 0)
        return out


# --- the cases -------------------------------------------------------------------------------

LONG = "a" * 40000


def case_long_set_segment(s):
    s.run(["config"] + s.base + ["--set", LONG + "=1"], 2, "unknown field")


def case_long_unknown_field_under_system(s):
    s.run(["config"] + s.base + ["--set", "system." + LONG + "=1"], 2, "40000 characters")


def case_long_enum_value_in_file(s):
    f = s.write("enum.textproto", "run { fidelity: " + "A" * 40000 + " }\n")
    s.run(["config"] + s.base + [f], 2, "unknown enum value")


def case_long_field_name_in_file(s):
    f = s.write("field.textproto", "run { " + "b" * 40000 + ": 1 }\n")
    s.run(["config"] + s.base + [f], 2, "unknown field")


def case_long_element_name_in_file(s):
    f = s.write("name.textproto", 'system { components { name: "' + "c" * 40000 + '" } }\n')
    s.run(["config"] + s.base + [f], 2, None)


def case_index_past_int32(s):
    s.run(["config"] + s.base + ["--set", "system.components[2147483648].name=x"], 2,
          "index out of range")


def case_index_wrapping_to_one(s):
    # 2^32 + 1 once edited element 1.
    s.run(["config"] + s.base + ["--set", "system.components[4294967297].name=x"], 2,
          "index out of range")


def case_index_huge(s):
    s.run(["config"] + s.base + ["--set", "system.components[" + "9" * 400 + "].name=x"], 2,
          "index out of range")


def case_directory_as_config(s):
    s.run(["config"] + s.base + [s.tmp], 2, "is a directory")


def case_fifo_as_config(s):
    p = s.path("fifo")
    os.mkfifo(p)
    s.run(["config"] + s.base + [p], 2, "not a regular file")


def case_device_as_config(s):
    s.run(["config"] + s.base + ["/dev/urandom"], 2, "not a regular file")


def case_oversized_config(s):
    p = s.path("big.textproto")
    with open(p, "w") as f:
        f.write("# padding\n" * (7 << 20))  # 70 MB of comments
    s.run(["config"] + s.base + [p], 2, "more than the limit")


def case_infinity_in_file(s):
    f = s.write("inf.textproto", 'system { components { name: "hbm" hbm { energy_pj_per_bit: inf } } }\n')
    s.run(["config"] + s.base + [f], 2, "expected a finite number")


def case_nan_in_file(s):
    f = s.write("nan.textproto", 'system { components { name: "hbm" hbm { energy_pj_per_bit: nan } } }\n')
    s.run(["config"] + s.base + [f], 2, "expected a finite number")


def case_infinity_in_message_override(s):
    s.run(["config"] + s.base + ["--set", "system.components[hbm].hbm={energy_pj_per_bit: -inf}"],
          2, "expected a finite number")


def case_latency_past_2_to_63(s):
    s.run(["run"] + s.base + ["--set", "system.links[dma_hbm].latency_ps=9223372036854775808",
                              "--quiet"], 2, "at most 2^56 ps")


def case_detailed_timing_2_to_31(s):
    s.run(["run"] + s.base + ["--set", "run.fidelity=DETAILED", "--set",
                              "system.components[hbm].hbm.device.timing.rc=2147483648", "--quiet"],
          2, "cycles")


def case_max_sim_time_past_limit(s):
    s.run(["config"] + s.base + ["--set", "run.max_sim_time_ps=18446744073709551615"], 2,
          "at most 2^62 ps")


def case_tiny_stats_interval_is_bounded(s):
    # One sample a picosecond once meant a billion samples; the series is thinned instead.
    out = s.result("tiny_interval.h5", ["--set", "run.stats_interval_ps=1"])
    with h5py.File(out, "r") as f:
        n = len(f["stats/time_ps"])
        if not 1000 < n <= 65537:
            raise Failure(f"{n} samples")
        t = f["stats/time_ps"][()]
        if any(t[i + 1] <= t[i] for i in range(len(t) - 1)):
            raise Failure("sample times not increasing")


def case_degraded_link_saturating_time(s):
    src = s.src
    args = ["run", f"{src}/configs/hardware/t4.textproto",
            f"{src}/configs/hardware/fragments/t4_flexgen_host.textproto",
            f"{src}/configs/models/opt_6_7b.textproto",
            f"{src}/configs/software/pytorch_eager_per_op.textproto",
            f"{src}/configs/validation/v6_opt_30b_t4.textproto",
            "--set", "workload.model.layers=4", "--set", "workload.decode.batch_size=12",
            "--set", "workload.decode.decode_steps=4",
            "--set", "workload.decode.hidden_state_checkpoints=true",
            "--set", "policy.orchestration.host_attention=!clear",
            "--set", "policy.orchestration.resident_fraction=1",
            "--set", "policy.orchestration.kv_restore=KV_RESTORE_TRANSFER",
            "--set", 'system={faults{name:"link" start_ps:0 duration_ps:0 link_degraded{'
                     'link:"dma_host_ddr" bandwidth_fraction:1e-300}}}', "--quiet"]
    s.run(args, 2, "2^62 ps")


def stops_by_wall_limit(s, args, out, limit_s, within_s):
    # Runs `args` with run.max_wall_time_s = limit_s; the run must end within `within_s` of wall
    # time and say it stopped by the wall limit.
    import time
    t0 = time.time()
    s.run(args + ["--set", f"run.max_wall_time_s={limit_s}", "--quiet", "--out", out], 0)
    took = time.time() - t0
    if took > within_s:
        raise Failure(f"a {limit_s} s wall limit stopped the run after {took:.0f} s")
    with h5py.File(out, "r") as f:
        why = f["meta/stopped_by"][()]
        why = why.decode() if isinstance(why, bytes) else why
        if why != "max_wall_time":
            raise Failure(f"stopped_by {why!r}")


def case_wall_time_limit_inside_a_long_step(s):
    # One command-level HBM decode step of the full model takes minutes; the wall limit stops it
    # from inside the device's loop, and the result says why it stopped.
    stops_by_wall_limit(s, ["run", f"{s.src}/configs/hardware/h100_sxm.textproto",
                            f"{s.src}/configs/memory/hbm3_5234_h100.textproto",
                            f"{s.src}/configs/models/llama3_8b.textproto",
                            f"{s.src}/configs/studies/default.textproto",
                            "--set", "run.fidelity=DETAILED",
                            "--set", "workload.decode.decode_steps=1"], s.path("wall.h5"), 2, 30)


def case_wall_time_limit_inside_a_fast_op(s):
    # One FAST decode step of the two-layer model streamed in 64-byte tiles takes about 3.6 s of
    # wall time (the gate/up projection alone is 3.7 million tiles); the compute engine's own
    # check stops it.
    stops_by_wall_limit(s, ["run"] + s.base + [
        "--set", "workload.decode.decode_steps=1",
        "--set", "system.components[compute].compute.tile_bytes=64"],
        s.path("wall_fast.h5"), 1, 10)


def case_one_point_sweep_writes_its_summary(s):
    # A sweep of one point: its summary table is one row of many columns and two strings, which
    # outgrew a result writer's conversion buffer sized to the row in memory (a string takes 16
    # bytes as stored, 8 in memory): the collect step died with an uncaught exception (exit 1)
    # and left no summary.h5.
    spec = s.write("one.textproto", "\n".join([
        f'base: "{s.src}/configs/hardware/h100_sxm.textproto"',
        f'base: "{s.src}/configs/models/llama3_2_1b.textproto"',
        f'base: "{s.src}/configs/studies/default.textproto"',
        'set: "workload.decode.decode_steps=2"',
        'axes { path: "workload.decode.batch_size" name: "batch" values: ["1"] }', ""]))
    out = s.path("one_point")
    s.run(["sweep", spec, "--out", out, "--quiet"], 0)
    with h5py.File(os.path.join(out, "summary.h5"), "r") as f:
        if f["summary"].shape != (1,):
            raise Failure(f"summary table of shape {f['summary'].shape}, not one row")


def case_wall_time_limit_refuses_bad_values(s):
    s.run(["config"] + s.base + ["--set", "run.max_wall_time_s=-1"], 2, "max_wall_time_s")
    s.run(["config"] + s.base + ["--set", "run.max_wall_time_s=inf"], 2, "finite")


def corrupt_copy(s, src_path, name, edit):
    data = bytearray(open(src_path, "rb").read())
    data = edit(data)
    return s.write(name, bytes(data))


def case_report_byte_flip(s):
    good = s.result()
    for at in (100, 600, 5000, -100):
        def flip(d, at=at):
            d[at] ^= 0xFF
            return d
        bad = corrupt_copy(s, good, "flip.h5", flip)
        s.run(["report", bad], 2, "damaged")


def case_report_truncated(s):
    good = s.result()
    size = os.path.getsize(good)
    for keep in (0, 10, 512, 4096, size // 2, size - 1):
        bad = corrupt_copy(s, good, "cut.h5", lambda d, keep=keep: d[:keep])
        s.run(["report", bad], 2, "tiersim result file")


def case_report_not_hdf5(s):
    s.run(["report", s.write("text.h5", "hello\n")], 2, "not a tiersim result file")


def case_report_plain_hdf5(s):
    p = s.path("plain.h5")
    with h5py.File(p, "w") as f:
        f["summary/x"] = 1.0
    s.run(["report", p], 2, "not a tiersim result file")


def case_report_missing_and_directory(s):
    s.run(["report", s.path("none.h5")], 2, "no such file")
    s.run(["report", s.tmp], 2, "is a directory")



def case_output_names_too_long(s):
    # An --out name past the file system's limit once passed the checks and failed at the end of
    # the run inside HDF5 (exit 1); a path component past it threw from std::filesystem.
    for n in (5000, 243):
        name = "a" * n + ".h5"
        s.run(["run"] + s.base + ["--quiet", "--out", s.path(name)], 2, "file name too long")
        if os.path.exists(s.path(name)):
            raise Failure("a result file appeared")
    s.run(["report", s.path("a" * 5000 + ".h5")], 2, "File name too long")
    sweep = f"{s.src}/configs/sweeps/batch_context_h100.textproto"
    s.run(["sweep", sweep, "--out", s.path("b" * 5000)], 2, "File name too long")
    s.run(["sweep", "collect", s.path("b" * 5000)], 2, "not a sweep or study directory")


def case_spec_base_name_too_long(s):
    # A sweep or study spec naming a base file of 5000 characters: std::filesystem threw from
    # the plan's existence check (found by fuzz_spec).
    spec = s.write("long_base.textproto",
                   f'base: "{"c" * 5000}.textproto"\naxes {{ path: "run.seed" values: ["1"] }}\n')
    s.run(["sweep", spec, "--out", s.path("sw")], 2, "no such file")
    study = s.write("long_study.textproto",
                    f'base: "{"c" * 5000}.textproto"\nbaseline {{ name: "b" }}\n'
                    'mechanisms { name: "m" set: "run.seed=2" }\n')
    s.run(["study", study, "--out", s.path("st")], 2, "no such file")

def case_stale_partial_removed(s):
    host = socket.gethostname().replace("/", "_").replace("-", "_")
    out = s.path("p.h5")
    dead = s.path(f".p.h5.partial-{host}-999999")
    other = s.path(".p.h5.partial-otherhost-1")
    for p in (dead, other):
        open(p, "w").close()
    s.run(["run"] + s.base + ["--quiet", "--out", out], 0)
    if os.path.exists(dead):
        raise Failure("a dead process's partial file was kept")
    if not os.path.exists(other):
        raise Failure("another host's partial file was removed")


def stat_last(f, path):
    return float(f["stats/" + path][-1])


def case_offline_sram_counts_only_completed(s):
    # The SRAM offline for the whole run: nothing is served, every failure is counted (HBM once
    # "served" 45 GB of copies that never landed, and the compute engine read the offline SRAM).
    out = s.result("offline_all.h5", ["--set", 'system={faults{name:"f" start_ps:0 duration_ps:0 '
                                               'device_offline:"sram"}}'])
    with h5py.File(out, "r") as f:
        if stat_last(f, "hbm/bytes_read") != 0 or stat_last(f, "sram/bytes_read") != 0:
            raise Failure("an offline SRAM's copies were counted")
        if stat_last(f, "dma/transfers_failed") == 0 or \
                stat_last(f, "compute/sram_offline_failures") == 0:
            raise Failure("failures not counted")
    # Offline for the first 2 ms: what HBM served is exactly what the DMA completed.
    out = s.result("offline_window.h5", ["--set", 'system={faults{name:"f" start_ps:0 '
                                                  'duration_ps:2000000000 device_offline:"sram"}}'])
    with h5py.File(out, "r") as f:
        served = stat_last(f, "hbm/bytes_read") + stat_last(f, "hbm/bytes_written")
        copied = stat_last(f, "dma/bytes")
        if served != copied or copied == 0:
            raise Failure(f"HBM served {served} bytes, the DMA completed {copied}")
        if stat_last(f, "dma/transfers_failed") == 0:
            raise Failure("no transfer failed during the outage")
        # The compute engine's own SRAM access waited for the SRAM to come back.
        if stat_last(f, "compute/sram_offline_waits") == 0 or \
                stat_last(f, "compute/sram_offline_failures") != 0:
            raise Failure("the compute engine did not wait for the SRAM")


def case_device_offline_of_a_non_memory(s):
    # Only memories refuse requests: an offline DMA engine or compute engine was accepted and
    # silently stayed online.
    for name in ("dma", "compute"):
        s.run(["config"] + s.base + ["--set", 'system={faults{name:"f" start_ps:0 '
                                              'device_offline:"%s"}}' % name], 2, "is not a memory")


def stat_labels(f, path):
    d = f["stats/" + path]
    return dict(zip(d.attrs["labels"].split(","), (float(x) for x in d[-1])))


def case_answer_lost_is_counted_apart(s):
    # Weights in CXL behind a switch, the switch's link down for 2 ms (40 times the DMA's
    # timeout) mid-run: a read the expander served whose data was stalled on the link fails,
    # and the expander has counted it. The DMA engine counts those bytes in served_bytes_lost,
    # so what the expander served is exactly the completed reads plus the lost ones.
    src = s.src
    out = s.path("lost.h5")
    s.run(["run", f"{src}/configs/hardware/h100_sxm.textproto",
           f"{src}/configs/memory/cxl_type3_gen5_x8.textproto",
           f"{src}/configs/switches/cxl_switch_gen5.textproto",
           f"{src}/configs/hardware/fragments/h100_weights_in_cxl.textproto",
           f"{src}/configs/models/llama3_8b.textproto", f"{src}/configs/studies/default.textproto",
           "--set", "workload.decode.decode_steps=3",
           "--set", 'system={faults{name:"cut" start_ps:1200000000000 duration_ps:2000000000 '
                    'link_down:"switch_cxl"}}', "--quiet", "--out", out], 0)
    with h5py.File(out, "r") as f:
        path, lost = stat_labels(f, "dma/bytes_by_path"), stat_labels(f, "dma/served_bytes_lost")
        served = stat_last(f, "cxl_mem/bytes_read")
        if lost["cxl_read"] == 0 or stat_last(f, "dma/transfers_failed") == 0:
            raise Failure("no answer was lost")
        if served != path["cxl_to_sram"] + lost["cxl_read"]:
            raise Failure(f"the expander served {served} bytes, the DMA completed "
                          f"{path['cxl_to_sram']} and lost {lost['cxl_read']}")
        if stat_last(f, "dma/bytes_failed") == 0:
            raise Failure("failed bytes not counted")
        # A copy whose read failed writes nothing (its SRAM write was once served all the same).
        if lost["sram_written"] != 0:
            raise Failure(f"{lost['sram_written']} bytes written for copies whose read failed")


def flexgen_ssd(s, name, fault):
    src = s.src
    out = s.path(name)
    s.run(["run", f"{src}/configs/hardware/t4.textproto",
           f"{src}/configs/hardware/fragments/t4_flexgen_host.textproto",
           f"{src}/configs/hardware/fragments/t4_flexgen_ssd.textproto",
           f"{src}/configs/models/opt_175b.textproto",
           f"{src}/configs/software/pytorch_eager_per_op.textproto",
           f"{src}/configs/validation/v6_opt_175b_t4.textproto",
           "--set", "workload.model.layers=4", "--set", "workload.decode.decode_steps=2",
           "--set", "workload.decode.batch_size=16", "--set", "workload.decode.micro_batches=2",
           "--set", 'system={faults{name:"f" device_offline:"host_ddr" %s}}' % fault,
           "--quiet", "--out", out], 0)
    return out


def ddr_balances(f):
    # Host DDR serves the DMA engines' copies and the SSD's bounce copies, nothing else.
    path, lost = {}, {}
    for engine in ("dma", "cpu"):
        for k, v in stat_labels(f, engine + "/bytes_by_path").items():
            path[k] = path.get(k, 0) + v
        for k, v in stat_labels(f, engine + "/served_bytes_lost").items():
            lost[k] = lost.get(k, 0) + v
    bounce = stat_last(f, "ssd/bounce_bytes")
    unread = stat_last(f, "ssd/bounce_bytes_unread")
    read = sum(v for k, v in path.items() if k.startswith("ddr_to_")) + lost["ddr_read"] + bounce
    written = sum(v for k, v in path.items() if k.endswith("_to_ddr")) + lost["ddr_written"] + \
        bounce + unread
    if stat_last(f, "host_ddr/bytes_read") != read or \
            stat_last(f, "host_ddr/bytes_written") != written:
        raise Failure(f"host DDR served {stat_last(f, 'host_ddr/bytes_read')} read and "
                      f"{stat_last(f, 'host_ddr/bytes_written')} written bytes; initiators "
                      f"account for {read} and {written}")


def case_ssd_bounce_memory_offline(s):
    # The SSD bounces every command through host DDR. With host DDR offline for good the drive
    # once threw an internal error (exit 1); now it refuses what it cannot deliver, the DMA
    # counts those transfers failed, and the run completes.
    out = flexgen_ssd(s, "bounce_gone.h5", "start_ps:0 duration_ps:0")
    with h5py.File(out, "r") as f:
        if stat_last(f, "ssd/requests_refused") == 0 or stat_last(f, "ssd/bytes_read") != 0:
            raise Failure("the SSD served reads it could not bounce")
        if stat_last(f, "host_ddr/bytes_read") + stat_last(f, "host_ddr/bytes_written") != 0:
            raise Failure("an offline host DDR counted bytes")
        ddr_balances(f)
    # Offline for 5 ms from 1 s: the drive's copies wait for it and nothing is refused.
    out = flexgen_ssd(s, "bounce_window.h5", "start_ps:1000000000000 duration_ps:5000000000")
    with h5py.File(out, "r") as f:
        if stat_last(f, "ssd/bounce_offline_waits") == 0 or \
                stat_last(f, "ssd/requests_refused") != 0:
            raise Failure("the SSD did not wait for its bounce memory")
        ddr_balances(f)


# Traces: a length-delimited stream of a header and op records.
def varint(b, i):
    r = sh = 0
    while True:
        c = b[i]
        i += 1
        r |= (c & 0x7F) << sh
        sh += 7
        if c < 0x80:
            return r, i


def records(data):
    out, i = [], 0
    while i < len(data):
        n, j = varint(data, i)
        out.append((i, j, j + n))  # record start, payload start, end
        i = j + n
    return out


def make_trace(s):
    p = s.path("t.trace")
    if not os.path.exists(p):
        s.run(["trace"] + s.base + ["--set", "workload.decode.decode_steps=3", "--out", p,
                                    "--quiet"], 0)
    return p, open(p, "rb").read()


def replay_args(s, trace):
    cfg = s.write("replay.textproto",
                  f'workload {{ replay {{ trace: "{trace}" }} }}\n'
                  'policy { placement: STREAM_ALL }\n'
                  'run { seed: 1 fidelity: FAST max_sim_time_ps: 0 stats_interval_ps: 0 '
                  'op_records: OP_RECORDS_NONE }\n')
    return ["run", f"{s.src}/configs/hardware/h100_sxm.textproto", cfg, "--quiet"]


def case_trace_replays_whole(s):
    p, _ = make_trace(s)
    s.run(replay_args(s, p), 0)


def case_trace_cut_at_op_boundary(s):
    _, data = make_trace(s)
    recs = records(data)
    for k in (1, len(recs) // 2, len(recs) - 1):
        cut = s.write("cut.trace", data[:recs[k - 1][2]])
        s.run(replay_args(s, cut), 2, "steps (cut short?)")


def case_trace_cut_mid_op(s):
    _, data = make_trace(s)
    recs = records(data)
    cut = s.write("mid.trace", data[:recs[len(recs) // 2][2] - 3])
    s.run(replay_args(s, cut), 2, "truncated or corrupt")


def patch_op_flops(data, value):
    # TraceOp.flops is field 5, a double: tag byte 0x29 then 8 bytes, at the top level of a record.
    recs = records(data)
    out = bytearray(data)
    for _, start, end in recs[1:]:
        i = start
        while i < end:
            tag, j = varint(out, i)
            field, wire = tag >> 3, tag & 7
            if wire == 0:
                _, i = varint(out, j)
            elif wire == 1:
                if field == 5:
                    out[j:j + 8] = struct.pack("<d", value)
                    return bytes(out)
                i = j + 8
            elif wire == 2:
                n, k = varint(out, j)
                i = k + n
            elif wire == 5:
                i = j + 4
            else:
                raise Failure("unexpected wire type in the trace")
    raise Failure("no op with FLOPs in the trace")


def case_trace_bad_flops(s):
    _, data = make_trace(s)
    for v in (float("nan"), float("inf"), -1.0, 1e300):
        bad = s.write("flops.trace", patch_op_flops(data, v))
        s.run(replay_args(s, bad), 2, "FLOPs must be finite")


def case_trace_garbage(s):
    _, data = make_trace(s)
    recs = records(data)
    bad = bytearray(data)
    start, end = recs[3][1], recs[3][2]
    for i in range(start, end):
        bad[i] = 0xFF
    s.run(replay_args(s, s.write("garbage.trace", bytes(bad))), 2, None)


def main():
    tiersim, src = sys.argv[1], sys.argv[2]
    only = sys.argv[3] if len(sys.argv) > 3 else ""
    cases = [(n, f) for n, f in sorted(globals().items())
             if n.startswith("case_") and only in n]
    failed = []
    with tempfile.TemporaryDirectory() as tmp:
        s = Suite(tiersim, src, tmp)
        for name, fn in cases:
            try:
                fn(s)
                print(f"ok   {name[5:]}")
            except Failure as e:
                failed.append(name)
                print(f"FAIL {name[5:]}: {e}")
    print(f"{len(cases) - len(failed)} of {len(cases)} regression cases pass")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
