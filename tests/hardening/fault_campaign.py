#!/usr/bin/python3
"""Randomized fault campaign over the shipped studies: every byte a memory serves is accounted
for by an initiator, whatever fails.

Cases: every shipped single-run study (the runs of tests/golden/cases.json), the baseline point
of every what-if study (configs/studies/whatif/: its base files, its `set`, the baseline's `set`,
each axis's first value, seed_base), and two shipped configurations no study uses, for the paths
only they have: weights in a CXL expander behind a switch (two serial links), and validation
row V6-175B's FlexGen SSD (an NVMe drive bouncing through host DDR). Each is cut to a run of a
fraction of a second (2 decode steps, 4 layers -- DeepSeek-V3: its dense layers and one MoE
layer --, batch at most 16, a 2-layer speculative draft, 6 short serving requests), run once
without faults (it must balance too; it gives the simulated duration), then with faults drawn by
a seeded random generator: 1 to --max-faults (default 4) of `device_offline` of a memory of the
system (HBM, SRAM, DDR, CXL, NVMe, whichever it has), `link_down` and `link_degraded` (bandwidth
fraction log-uniform in [0.001, 1)) of a link with a serial model, each starting at 0 or at a
random time inside the run and lasting a short (waited out: below the DMA completion timeout),
long (past the timeout), run-sized or open-ended (until the end of the run) time; in 30% of the
runs every DMA engine's completion timeout is drawn too (5 us to 5 ms, log-uniform). The faults
go in a generated config fragment (`system { faults { ... } }`) after the case's files.

Each faulted run must:
(a) exit 0, or 2 with a short message that is not an internal error: never a signal, a hang
    (--timeout), or exit code 1;
(b) balance its bytes, from the result file's final stats, with exact integer equality (the
    counters are integers below 2^53; the stats store them as doubles). For each memory tier T
    (hbm and gddr: hbm; sram; ddr; cxl; nvme), summed over the memories of that tier:

      read(T)    = sum over DMA engines of bytes_by_path[T_to_*]            (completed transfers)
                 + sum over DMA engines of served_bytes_lost[T_read]         (see below)
                 + compute engines' sram_bytes_read                         (T = sram)
                 + bounce_bytes of NVMe drives bouncing through a T memory
      written(T) = sum over DMA engines of bytes_by_path[*_to_T]
                 + sum over DMA engines of served_bytes_lost[T_written]
                 + compute engines' sram_bytes_written                      (T = sram)
                 + bounce_bytes + bounce_bytes_unread of NVMe drives bouncing through a T memory

    and, per DMA engine: bytes = sum of bytes_by_path = sum of bytes_by_class = sum of
    bytes_by_reason; transfers = the latency histogram's count; the summary's
    transfers_completed/failed/retried/rerouted = the sums over DMA engines. A failed transfer
    is in transfers_failed and bytes_failed, never in bytes or bytes_by_path, so a memory that
    counted it outside served_bytes_lost would break the balance. Without faults: nothing
    failed, retried, rerouted or lost. With only degraded links: nothing failed or lost. Without
    a link down no write is lost (served_bytes_lost[*_written] = 0). A memory refuses
    (requests_refused) only when it has an offline fault (an NVMe drive also when its bounce
    memory is offline until the end of the run); the compute engine fails an SRAM access
    (sram_offline_failures) only when its SRAM is offline until the end of the run.
    Issued = completed + failed: for decode studies that stream everything (policy STREAM_ALL),
    whose transfers do not depend on timing, the DMA engines' transfers + transfers_failed and
    bytes + bytes_failed equal the fault-free run's transfers and bytes, the compute engine
    streams the same tiles and (unless its SRAM is gone for good) reads and writes the same SRAM
    bytes: no transfer is dropped or repeated. Orchestrated and serving studies decide what to
    move from what has landed when, so their issued totals legitimately differ from the
    fault-free run's; they get the balance only.
(c) be deterministic: the same faulted run again gives bit-identical summary and final stats
    (wall time aside), for every --repeat-every'th run (default: every run).

The lost answer (the documented asymmetry, docs/models/dma.md and faults.md): a memory that
served a request whose answer is then lost has counted bytes that no completed transfer
accounts for. It happens when a response stalls on a link past the completion timeout (a read's
data, a write's completion), when a switch fails a request after its target served it (the
engine then tries another way, and the target may serve it again), and to the read of a copy
whose write then fails (a copy whose read fails writes nothing). The DMA engine counts those
bytes in served_bytes_lost, by tier and direction (what the memory counted for a side beyond a
completed transfer's bytes), so the balance stays an equality; a completed side that the memory
did not serve would leave the memory short and fail it.

What the campaign found (fixed, each with a case in regressions.py): an NVMe drive whose bounce
memory was offline stopped the run with an internal error (exit 1); device_offline of a
component that is not a memory (a DMA engine, a switch) was accepted and silently did nothing;
the destination of a copy whose read failed was written all the same. No shipped configuration
has two paths to a memory, so rerouting (transfers_rerouted) stays at 0 here; component_fabric
tests it.

A run terminated by SIGTERM (on a shared machine, by someone else: tiersim never sends it) is
run once more, with a note.

usage: fault_campaign.py TIERSIM_BINARY SOURCE_DIR [--runs N] [--seed S] [--max-faults K]
                         [--only NAME[,NAME...]] [--repeat-every M] [--jobs J] [--keep DIR]
                         [--timeout S] [--verbose]
Long runs: tests/hardening/fault_campaign.py build/tiersim . --runs 500 --seed $RANDOM
A failure prints the case, the fault fragment and the command that reproduces it; --keep DIR
keeps every run's fragment and result file.
"""
import argparse
import concurrent.futures
import json
import math
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import h5py
import numpy

DEFAULT_SEED = 20261203
MEMORY_KINDS = {"hbm": "hbm", "gddr": "hbm", "sram": "sram", "ddr": "ddr", "cxl": "cxl",
                "nvme": "nvme"}
TIERS = ["none", "sram", "hbm", "ddr", "cxl", "nvme"]  # models/core/movement_intent.h order
DEFAULT_TIMEOUT_PS = 50_000_000  # DmaParams::completion_timeout_ps


class Failure(Exception):
    pass


# --- a small text-format reader (the output of `tiersim config`) ------------------------------

TOKEN = re.compile(r'\s*(?:(#[^\n]*)|("(?:[^"\\]|\\.)*")|([{}\[\]:,;<>])|([^\s{}\[\]:,;<>"#]+))')


def parse_textproto(text):
    """Returns a dict: field -> list of values (dicts for messages, strings otherwise)."""
    tokens = []
    pos = 0
    while pos < len(text):
        m = TOKEN.match(text, pos)
        if not m or m.end() == pos:
            if text[pos:].strip() == "":
                break
            raise ValueError("cannot parse config text at %d" % pos)
        pos = m.end()
        if m.group(1):
            continue
        if m.group(2):
            tokens.append(("s", bytes(m.group(2)[1:-1], "utf-8").decode("unicode_escape")))
        elif m.group(3):
            tokens.append(("p", m.group(3)))
        elif m.group(4):
            tokens.append(("w", m.group(4)))

    def message(i, end):
        out = {}
        while i < len(tokens) and tokens[i] != ("p", end):
            name = tokens[i][1]
            i += 1
            if tokens[i] == ("p", ":"):
                i += 1
            if tokens[i][0] == "p" and tokens[i][1] in "{<":
                close = "}" if tokens[i][1] == "{" else ">"
                value, i = message(i + 1, close)
                i += 1
                out.setdefault(name, []).append(value)
            elif tokens[i] == ("p", "["):
                i += 1
                while tokens[i] != ("p", "]"):
                    if tokens[i] != ("p", ","):
                        out.setdefault(name, []).append(tokens[i][1])
                    i += 1
                i += 1
            else:
                out.setdefault(name, []).append(tokens[i][1])
                i += 1
            if i < len(tokens) and tokens[i][0] == "p" and tokens[i][1] in ",;":
                i += 1
        return out, i

    return message(0, None)[0]


def field(msg, *path, default=None):
    for name in path:
        if not isinstance(msg, dict) or name not in msg or not msg[name]:
            return default
        msg = msg[name][0]
    return msg


# --- cases -------------------------------------------------------------------------------------

def spec_cases(src):
    """name -> (config files, --set overrides): the golden study runs and what-if baselines."""
    cases = {}
    with open(os.path.join(src, "tests/golden/cases.json")) as f:
        for run in json.load(f)["runs"]:
            files = [os.path.join(src, "configs", c + ".textproto") for c in run["configs"]]
            # Fragment files in sets are relative to the source tree (golden.py runs there).
            sets = [re.sub(r"(\+?=)@(.+)$", lambda m: m.group(1) + "@" + os.path.join(src, m.group(2)),
                           x) for x in run.get("set", [])]
            cases[run["name"]] = (files, sets)
    whatif = os.path.join(src, "configs/studies/whatif")
    for name in sorted(os.listdir(whatif)):
        if not name.endswith(".textproto"):
            continue
        path = os.path.join(whatif, name)
        with open(path) as f:
            spec = parse_textproto(f.read())
        files = [os.path.normpath(os.path.join(whatif, b)) for b in spec.get("base", [])]
        sets = list(spec.get("set", [])) + list(field(spec, "baseline", default={}).get("set", []))
        # Fragment files in sets (PATH=@FILE, PATH+=@FILE) are relative to the spec's directory.
        sets = [re.sub(r"(\+?=)@(.+)$",
                       lambda m: m.group(1) + "@" + os.path.normpath(os.path.join(whatif, m.group(2))),
                       x) for x in sets]
        for axis in spec.get("axes", []):
            if axis.get("values"):
                sets.append("%s=%s" % (axis["path"][0], axis["values"][0]))
            elif axis.get("range"):
                sets.append("%s=%s" % (axis["path"][0], field(axis, "range", "start")))
        if spec.get("seed_base"):
            sets.append("run.seed=%s" % spec["seed_base"][0])
        cases["whatif_" + name[:-len(".textproto")]] = (files, sets)
    # Shipped configurations no study uses, for the paths they alone have: weights in a CXL
    # expander behind a switch (two serial links, a switch that fails and reroutes), and the
    # FlexGen SSD of validation row V6-175B (an NVMe drive bouncing through host DDR, behind a
    # root-complex switch).
    for name, configs in (
            ("extra_cxl_behind_switch",
             ["hardware/h100_sxm", "memory/cxl_type3_gen5_x8", "switches/cxl_switch_gen5",
              "hardware/fragments/h100_weights_in_cxl", "models/llama3_8b", "studies/default"]),
            ("extra_flexgen_ssd",
             ["hardware/t4", "hardware/fragments/t4_flexgen_host",
              "hardware/fragments/t4_flexgen_ssd", "models/opt_175b",
              "software/pytorch_eager_per_op", "validation/v6_opt_175b_t4"])):
        cases[name] = ([os.path.join(src, "configs", c + ".textproto") for c in configs], [])
    return cases


def reductions(cfg):
    """--set overrides that make the run take a few seconds at most."""
    out = ["run.op_records=OP_RECORDS_NONE", "run.stats_interval_ps=0"]
    model = field(cfg, "workload", "model", default={})
    first_moe = field(model, "moe", "first_moe_layer")
    out.append("workload.model.layers=%d" % max(4, int(first_moe or 0) + 1))
    decode = field(cfg, "workload", "decode")
    if decode is not None:
        out.append("workload.decode.decode_steps=%d" % min(2, int(field(decode, "decode_steps",
                                                                        default="2"))))
        if field(decode, "speculative", "draft") is not None:
            out.append("workload.decode.speculative.draft.layers=2")
        if int(field(decode, "batch_size", default="1")) > 16:
            out.append("workload.decode.batch_size=16")
        if field(decode, "micro_batches") is not None:
            out.append("workload.decode.micro_batches=2")
    serving = field(cfg, "workload", "serving")
    if serving is not None:
        if field(serving, "poisson") is not None:
            out.append("workload.serving.poisson.requests=6")
            out.append("workload.serving.poisson.rate_per_s=2000")
        out.append("workload.serving.input_tokens={uniform{min:16 max:256}}")
        out.append("workload.serving.output_tokens={uniform{min:2 max:6}}")
    return out


class Case:
    def __init__(self, name, files, sets, cfg):
        self.name, self.files, self.sets = name, files, sets
        system = field(cfg, "system", default={})
        self.memories = {}   # name -> tier
        self.dmas, self.computes, self.bounce = [], [], {}  # bounce: nvme name -> memory name
        for c in system.get("components", []):
            name = field(c, "name")
            kind = next((k for k in c if k != "name"), None)
            if kind in MEMORY_KINDS:
                self.memories[name] = MEMORY_KINDS[kind]
                if kind == "nvme" and field(c, "nvme", "bounce_memory"):
                    self.bounce[name] = field(c, "nvme", "bounce_memory")
            elif kind == "dma":
                self.dmas.append(name)
                t = field(c, "dma", "completion_timeout_ps")
                self.timeout_ps = max(getattr(self, "timeout_ps", 0),
                                      int(t) if t else DEFAULT_TIMEOUT_PS)
            elif kind == "compute":
                self.computes.append((name, field(c, "compute", "sram")))
        self.timeout_ps = getattr(self, "timeout_ps", DEFAULT_TIMEOUT_PS)
        self.serial_links = [field(l, "name") for l in system.get("links", [])
                             if field(l, "serial") is not None]
        placement = field(cfg, "policy", "placement", default="")
        # The transfers do not depend on timing: every operand streamed in program order.
        self.fixed_stream = placement == "STREAM_ALL" and field(cfg, "workload", "decode") \
            is not None
        self.duration_ps = None
        self.clean = None  # the fault-free run's figures

    def command(self, tiersim, out, fragment=None):
        cmd = [tiersim, "run", *self.files]
        if fragment:
            cmd.append(fragment)
        for s in self.sets:
            cmd += ["--set", s]
        return cmd + ["--quiet", "--out", out]


def resolve(tiersim, name, files, sets):
    cmd = [tiersim, "config", *files]
    for s in sets:
        cmd += ["--set", s]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise Failure("%s: the config does not resolve (exit %d): %s"
                      % (name, r.returncode, r.stderr[-600:]))
    return parse_textproto(r.stdout)


# --- faults ------------------------------------------------------------------------------------

def draw_faults(rng, case, max_faults):
    """A DMA completion timeout (None: the config's) and a list of (kind, target, start_ps,
    duration_ps, fraction)."""
    kinds = [("device_offline", list(case.memories))]
    if case.serial_links:
        kinds += [("link_down", case.serial_links), ("link_degraded", case.serial_links)]
    t_end = max(case.duration_ps, 1)
    timeout = None
    if rng.random() < 0.3:  # every DMA engine's completion timeout, 5 us to 5 ms
        timeout = int(10 ** rng.uniform(math.log10(5e6), math.log10(5e9)))
    limit = timeout or case.timeout_ps
    faults = []
    for _ in range(rng.randint(1, max_faults)):
        kind, targets = rng.choice(kinds)
        target = rng.choice(targets)
        start = 0 if rng.random() < 0.15 else rng.randrange(t_end)
        r = rng.random()
        if r < 0.15:
            duration = 0  # until the end of the run
        elif r < 0.5:
            duration = rng.randint(1, max(1, limit * 4 // 5))  # waited out
        elif r < 0.8:
            duration = rng.randint(limit + 1, limit * 20)  # past the timeout
        else:
            duration = rng.randint(1, t_end)  # a share of the run
        fraction = 10 ** rng.uniform(-3, 0) if kind == "link_degraded" else None
        if fraction is not None:
            fraction = float("%.6g" % min(fraction, 0.999999))
        faults.append((kind, target, start, duration, fraction))
    return timeout, faults


def fragment_text(timeout, faults, dmas):
    lines = ["system {"]
    if timeout is not None:
        for d in dmas:
            lines.append('  components { name: "%s" dma { completion_timeout_ps: %d } }'
                         % (d, timeout))
    for i, (kind, target, start, duration, fraction) in enumerate(faults):
        if kind == "link_degraded":
            what = 'link_degraded { link: "%s" bandwidth_fraction: %r }' % (target, fraction)
        else:
            what = '%s: "%s"' % (kind, target)
        lines.append('  faults { name: "campaign%d" start_ps: %d duration_ps: %d %s }'
                     % (i, start, duration, what))
    lines.append("}")
    return "\n".join(lines) + "\n"


# --- a run and its figures ---------------------------------------------------------------------

def run(cmd, timeout):
    t0 = time.time()
    for attempt in range(2):
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, errors="replace",
                               timeout=timeout)
        except subprocess.TimeoutExpired:
            raise Failure("hung: no exit within %d s" % timeout)
        # tiersim never sends itself SIGTERM: on a shared machine someone else did. Once.
        if r.returncode != -signal.SIGTERM or attempt:
            break
        print("note: a run was terminated from outside (SIGTERM); running it again")
    if r.returncode < 0:
        raise Failure("killed by signal %d: %s" % (-r.returncode, r.stderr[-800:]))
    if r.returncode not in (0, 2):
        raise Failure("exit code %d: %s" % (r.returncode, r.stderr[-800:]))
    if r.returncode == 2:
        msg = r.stderr.strip()
        if not msg or len(msg) > 20000 or "internal error" in msg:
            raise Failure("exit code 2 without a clear message: %r" % msg[-800:])
    return r, time.time() - t0


def read_result(path):
    """Final stats by component and stat name, the summary and a fingerprint of both."""
    stats, summary = {}, {}
    with h5py.File(path, "r") as f:
        for comp, group in f["stats"].items():
            if not isinstance(group, h5py.Group):
                continue
            for name, d in group.items():
                v = d[()]
                stats.setdefault(comp, {})[name] = (v[-1] if v.ndim >= 1 and len(v) else v,
                                                    d.attrs.get("labels", ""))
        for name, d in f["summary"].items():
            if "wall_time" not in name:
                summary[name] = d[()]
        stats["_time_ps"] = {"last": (int(f["stats/time_ps"][-1]), "")}
    h = []
    for comp in sorted(stats):
        for name in sorted(stats[comp]):
            v = numpy.asarray(stats[comp][name][0])
            h.append((comp, name, v.dtype.str, v.tobytes()))
    for name in sorted(summary):
        v = numpy.asarray(summary[name])
        h.append(("summary", name, v.dtype.str, v.tobytes()))
    return stats, summary, h


def scalar(stats, comp, name, default=None):
    if comp not in stats or name not in stats[comp]:
        if default is None:
            raise Failure("stat %s/%s missing" % (comp, name))
        return default
    v = stats[comp][name][0]
    return float(numpy.asarray(v).sum()) if numpy.ndim(v) else float(v)


def vector(stats, comp, name):
    if comp not in stats or name not in stats[comp]:
        raise Failure("stat %s/%s missing" % (comp, name))
    v, labels = stats[comp][name]
    labels = labels.decode() if isinstance(labels, bytes) else str(labels)
    return dict(zip(labels.split(","), (float(x) for x in numpy.atleast_1d(v))))


def check_balance(case, stats, summary, faults):
    """The equations of the module docstring; returns figures for the campaign's totals."""
    faults = faults or []
    problems = []

    def expect(what, left, right):
        if left != right:
            problems.append("%s: %.17g != %.17g (difference %.17g)" % (what, left, right,
                                                                       left - right))

    kinds = {k for k, *_ in faults}
    offline = {t for k, t, *_ in faults if k == "device_offline"}
    gone = {t for k, t, _, dur, _ in faults if k == "device_offline" and dur == 0}
    # A drive refuses what it cannot bounce through a memory gone for good.
    offline |= {n for n, m in case.bounce.items() if m in gone}
    read = {t: 0.0 for t in TIERS}
    written = {t: 0.0 for t in TIERS}
    for m, tier in case.memories.items():
        read[tier] += scalar(stats, m, "bytes_read")
        written[tier] += scalar(stats, m, "bytes_written")
        refused = scalar(stats, m, "requests_refused", 0.0)
        if refused and m not in offline:
            problems.append("%s refused %d requests without an offline fault" % (m, refused))
    acc_read = {t: 0.0 for t in TIERS}
    acc_written = {t: 0.0 for t in TIERS}
    totals = {"transfers": 0.0, "failed": 0.0, "retried": 0.0, "rerouted": 0.0, "bytes": 0.0,
              "bytes_failed": 0.0, "lost": 0.0}
    for d in case.dmas:
        path = vector(stats, d, "bytes_by_path")
        lost = vector(stats, d, "served_bytes_lost")
        b = scalar(stats, d, "bytes")
        expect(d + " bytes = sum of bytes_by_path", b, sum(path.values()))
        expect(d + " bytes = sum of bytes_by_class", b, sum(vector(stats, d, "bytes_by_class")
                                                            .values()))
        expect(d + " bytes = sum of bytes_by_reason", b, sum(vector(stats, d, "bytes_by_reason")
                                                             .values()))
        n = scalar(stats, d, "transfers")
        expect(d + " transfers = the latency histogram's count", n,
               vector(stats, d, "transfer_latency")["count"])
        for label, v in path.items():
            src, dst = label.split("_to_")
            acc_read[src] += v
            acc_written[dst] += v
        for label, v in lost.items():
            tier, direction = label.rsplit("_", 1)
            (acc_read if direction == "read" else acc_written)[tier] += v
            # Without an outage on a link no answer is lost: only the read of a copy whose write
            # failed (a copy whose read failed writes nothing).
            if v and direction == "written" and "link_down" not in kinds:
                problems.append("%s: %d bytes written and lost without a link down" % (d, v))
        totals["transfers"] += n
        totals["failed"] += scalar(stats, d, "transfers_failed")
        totals["retried"] += scalar(stats, d, "transfers_retried")
        totals["rerouted"] += scalar(stats, d, "transfers_rerouted")
        totals["bytes"] += b
        totals["bytes_failed"] += scalar(stats, d, "bytes_failed")
        totals["lost"] += sum(lost.values())
    for c, sram in case.computes:
        acc_read["sram"] += scalar(stats, c, "sram_bytes_read")
        acc_written["sram"] += scalar(stats, c, "sram_bytes_written")
        failures = scalar(stats, c, "sram_offline_failures", 0.0)
        if failures and sram not in gone:
            problems.append("%s: %d SRAM accesses failed, the SRAM comes back" % (c, failures))
    for nvme, memory in case.bounce.items():
        bounced = scalar(stats, nvme, "bounce_bytes")
        acc_read[case.memories[memory]] += bounced
        acc_written[case.memories[memory]] += bounced + scalar(stats, nvme,
                                                                "bounce_bytes_unread", 0.0)
    for t in TIERS[1:]:
        expect("bytes read at %s = what initiators account for" % t, read[t], acc_read[t])
        expect("bytes written at %s = what initiators account for" % t, written[t],
               acc_written[t])
    if faults:
        for key, stat in (("transfers", "transfers_completed"), ("failed", "transfers_failed"),
                          ("retried", "transfers_retried"), ("rerouted", "transfers_rerouted")):
            if stat not in summary:
                problems.append("summary lacks %s in a run with faults" % stat)
            else:
                expect("summary %s = sum over DMA engines" % stat, float(summary[stat]),
                       totals[key])
    if not faults or kinds == {"link_degraded"}:
        for key in ("failed", "lost", "bytes_failed") + (("retried", "rerouted")
                                                          if not faults else ()):
            if totals[key]:
                problems.append("%s = %d %s" % (key, totals[key], "without faults" if not faults
                                                 else "with only degraded links"))
    if case.fixed_stream and case.clean is not None and faults:
        clean = case.clean
        expect("transfers + failed = the fault-free run's transfers",
               totals["transfers"] + totals["failed"], clean["transfers"])
        expect("bytes + bytes_failed = the fault-free run's bytes",
               totals["bytes"] + totals["bytes_failed"], clean["bytes"])
        for c, _ in case.computes:
            expect(c + " tiles = the fault-free run's", scalar(stats, c, "tiles"),
                   clean["tiles_" + c])
            if not scalar(stats, c, "sram_offline_failures", 0.0):
                for s in ("sram_bytes_read", "sram_bytes_written"):
                    expect("%s %s = the fault-free run's" % (c, s), scalar(stats, c, s),
                           clean[s + "_" + c])
    for c, _ in case.computes:
        totals["tiles_" + c] = scalar(stats, c, "tiles")
        for s in ("sram_bytes_read", "sram_bytes_written"):
            totals[s + "_" + c] = scalar(stats, c, s)
    totals["refused"] = sum(scalar(stats, m, "requests_refused", 0.0) for m in case.memories)
    totals["sram_waits"] = sum(scalar(stats, c, "sram_offline_waits", 0.0)
                               for c, _ in case.computes)
    totals["sram_failures"] = sum(scalar(stats, c, "sram_offline_failures", 0.0)
                                  for c, _ in case.computes)
    if problems:
        e = Failure("bytes do not balance:\n    " + "\n    ".join(problems))
        e.totals = totals
        raise e
    return totals


# --- the campaign ------------------------------------------------------------------------------

def prepare(tiersim, src, name, files, sets, tmp, timeout):
    cfg = resolve(tiersim, name, files, sets)
    # The reductions change no memory, link or engine: the resolved config describes the run.
    case = Case(name, files, sets + reductions(cfg), cfg)
    out = os.path.join(tmp, name + "_clean.h5")
    r, took = run(case.command(tiersim, out), timeout)
    if r.returncode != 0:
        raise Failure("%s: the fault-free run failed: %s" % (name, r.stderr[-600:]))
    stats, summary, _ = read_result(out)
    case.duration_ps = stats["_time_ps"]["last"][0]
    try:
        case.clean = check_balance(case, stats, summary, None)
    except Failure as e:
        raise Failure("%s (fault-free): %s" % (name, e))
    case.clean_wall_s = took
    return case


def faulted_run(tiersim, case, index, drawn, repeat, tmp, keep, timeout):
    dma_timeout, faults = drawn
    frag = os.path.join(tmp, "%s_%04d.textproto" % (case.name, index))
    text = fragment_text(dma_timeout, faults, case.dmas)
    with open(frag, "w") as f:
        f.write(text)
    out = os.path.join(tmp, "%s_%04d.h5" % (case.name, index))
    cmd = case.command(tiersim, out, frag)
    info = {"case": case.name, "index": index, "faults": faults, "exit": None, "wall_s": 0.0}
    try:
        r, took = run(cmd, timeout)
        info["exit"], info["wall_s"] = r.returncode, took
        if r.returncode == 2:
            info["message"] = r.stderr.strip().splitlines()[-1][:300]
            return info
        stats, summary, fingerprint = read_result(out)
        info["totals"] = check_balance(case, stats, summary, faults)
        if repeat:
            out2 = out[:-3] + "_again.h5"
            r2, took2 = run(case.command(tiersim, out2, frag), timeout)
            info["wall_s"] += took2
            if r2.returncode != 0:
                raise Failure("the same run again exited %d" % r2.returncode)
            _, _, fingerprint2 = read_result(out2)
            if fingerprint != fingerprint2:
                diffs = [a[:2] for a, b in zip(fingerprint, fingerprint2) if a != b]
                raise Failure("not deterministic: %d figures differ, e.g. %s"
                              % (len(diffs), diffs[:5]))
            info["repeated"] = True
            os.remove(out2)
    except Failure as e:
        info["failure"] = str(e)
        info["repro"] = " ".join(cmd) + "\n  with " + frag + ":\n" + text
        if keep:
            shutil.copy(frag, keep)
    finally:
        if keep and os.path.exists(out):
            shutil.copy(out, keep)
        if os.path.exists(out):
            os.remove(out)
    return info


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("tiersim")
    ap.add_argument("src")
    ap.add_argument("--runs", type=int, default=60, help="faulted runs in all (default 60)")
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED)
    ap.add_argument("--max-faults", type=int, default=4)
    ap.add_argument("--only", help="comma-separated case names (default: every study)")
    ap.add_argument("--repeat-every", type=int, default=1,
                    help="run every M-th faulted run twice (determinism; 0: never)")
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--timeout", type=int, default=120, help="seconds before a run is a hang")
    ap.add_argument("--keep", help="directory to keep fragments and result files in")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args(argv)
    t0 = time.time()
    tiersim, src = os.path.abspath(args.tiersim), os.path.abspath(args.src)
    specs = spec_cases(src)
    if args.only:
        names = args.only.split(",")
        unknown = [n for n in names if n not in specs]
        if unknown:
            print("fault_campaign: unknown case(s): %s (cases: %s)"
                  % (", ".join(unknown), ", ".join(specs)))
            return 2
        specs = {n: specs[n] for n in names}
    if args.keep:
        os.makedirs(args.keep, exist_ok=True)
    rng = random.Random(args.seed)
    failures = []
    tmp = tempfile.mkdtemp(prefix="tiersim_faults_")
    try:
        cases = []
        with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
            futs = {pool.submit(prepare, tiersim, src, n, f, s, tmp, args.timeout): n
                    for n, (f, s) in specs.items()}
            for fut in concurrent.futures.as_completed(futs):
                try:
                    cases.append(fut.result())
                except Failure as e:
                    failures.append(str(e))
                    print("FAIL %s" % e)
        cases.sort(key=lambda c: c.name)
        for c in cases:
            print("case %-40s %2d memories, %2d serial links, %8.3f ms simulated, %.2f s%s"
                  % (c.name, len(c.memories), len(c.serial_links), c.duration_ps / 1e9,
                     c.clean_wall_s, ", fixed stream" if c.fixed_stream else ""))
        plan = []
        for i in range(args.runs if cases else 0):
            case = cases[i % len(cases)]
            plan.append((case, i, draw_faults(rng, case, args.max_faults),
                         args.repeat_every > 0 and i % args.repeat_every == 0))
        results = []
        with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
            futs = [pool.submit(faulted_run, tiersim, c, i, f, rep, tmp, args.keep, args.timeout)
                    for c, i, f, rep in plan]
            for fut in futs:
                info = fut.result()
                results.append(info)
                if "failure" in info:
                    failures.append("%s run %d: %s" % (info["case"], info["index"],
                                                       info["failure"]))
                    print("FAIL %s run %d: %s\n  reproduce: %s" % (info["case"], info["index"],
                                                                  info["failure"],
                                                                  info["repro"]))
                elif args.verbose:
                    t = info.get("totals", {})
                    print("ok   %s run %d: exit %d, %d faults, %d completed, %d failed, "
                          "%d lost bytes, %.2f s" % (info["case"], info["index"], info["exit"],
                                                     len(info["faults"]),
                                                     t.get("transfers", 0), t.get("failed", 0),
                                                     t.get("lost", 0), info["wall_s"]))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    ok = [r for r in results if "failure" not in r]
    exit2 = [r for r in ok if r["exit"] == 2]
    tot = lambda k: sum(r.get("totals", {}).get(k, 0) for r in ok)
    kinds = {}
    for r in results:
        for k, *_ in r["faults"]:
            kinds[k] = kinds.get(k, 0) + 1
    print("%d cases, %d faulted runs (%d run twice), %d faults (%s); seed %d"
          % (len(specs), len(results), sum(1 for r in ok if r.get("repeated")),
             sum(kinds.values()), ", ".join("%d %s" % (v, k) for k, v in sorted(kinds.items())),
             args.seed))
    print("transfers: %d completed, %d failed, %d retried, %d rerouted; %d requests refused; "
          "%d SRAM waits, %d SRAM failures; %d bytes served and lost"
          % (tot("transfers"), tot("failed"), tot("retried"), tot("rerouted"), tot("refused"),
             tot("sram_waits"), tot("sram_failures"), tot("lost")))
    for r in exit2:
        print("exit 2 (%s run %d): %s" % (r["case"], r["index"], r["message"]))
    print("%d of %d faulted runs pass (%d exited 2 with a message); %.0f s"
          % (len(ok), len(results), len(exit2), time.time() - t0))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
