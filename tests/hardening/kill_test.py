#!/usr/bin/python3
"""Kill tests: `tiersim run`, `sweep` and `study` killed (SIGKILL, the whole process group) at
random moments, then run again. After every kill no file at a result path may look complete
unless it is (report reads it, or it is absent); the next run removes the killed run's partial
files and ends with results identical to an uninterrupted run's.

usage: kill_test.py TIERSIM_BINARY SOURCE_DIR [KILLS_PER_COMMAND]
"""
import csv
import glob
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time


class Failure(Exception):
    pass


def start(cmd):
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)


def group_alive(pgid):
    """Whether a process of group `pgid` still runs (zombies do not count)."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] not in "ZX" and int(fields[2]) == pgid:
            return True
    return False


def kill_after(cmd, seconds):
    p = start(cmd)
    time.sleep(seconds)
    if p.poll() is None:
        os.killpg(p.pid, signal.SIGKILL)
    p.wait()
    # The group's other members (a sweep's point processes) die asynchronously: the next run
    # starts once they are gone, as a user's would.
    deadline = time.time() + 10
    while group_alive(p.pid) and time.time() < deadline:
        time.sleep(0.05)


def run_ok(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        raise Failure(f"{' '.join(cmd[:3])}... exit code {r.returncode}: {r.stderr[-600:]}")
    return r


def report(tiersim, path):
    r = subprocess.run([tiersim, "report", path, "--json"], capture_output=True, text=True,
                       timeout=60)
    return r.returncode, (json.loads(r.stdout) if r.returncode == 0 else None)


def figures(summary):
    return {k: v for k, v in summary.items() if k != "wall_time_s"}


def table(path):
    with open(path) as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        for k in list(r):
            if "wall" in k:
                del r[k]
    return rows


def partials(directory):
    return glob.glob(os.path.join(directory, "**", ".*.partial-*"), recursive=True)


def check_run(tiersim, src, tmp, rng, kills):
    base = [f"{src}/configs/hardware/h100_sxm.textproto",
            f"{src}/configs/models/llama3_8b.textproto",
            f"{src}/configs/studies/default.textproto",
            "--set", "workload.decode.decode_steps=16", "--quiet"]
    ref = os.path.join(tmp, "ref.h5")
    t0 = time.time()
    run_ok([tiersim, "run"] + base + ["--out", ref])
    duration = time.time() - t0
    _, want = report(tiersim, ref)
    out = os.path.join(tmp, "run", "r.h5")
    for _ in range(kills):
        kill_after([tiersim, "run"] + base + ["--out", out], rng.uniform(0, duration * 1.1))
        if os.path.exists(out):
            code, got = report(tiersim, out)
            if code != 0 or figures(got) != figures(want):
                raise Failure("a killed run left a result file that is not the complete result")
            os.remove(out)
    run_ok([tiersim, "run"] + base + ["--out", out])
    _, got = report(tiersim, out)
    if figures(got) != figures(want):
        raise Failure("the run after the kills differs from an uninterrupted run")
    if partials(os.path.dirname(out)):
        raise Failure(f"partial files left: {partials(os.path.dirname(out))}")


def write_specs(src, tmp):
    sweep = os.path.join(tmp, "sweep.textproto")
    with open(sweep, "w") as f:
        f.write(f'name: "kill"\n'
                f'base: "{src}/configs/hardware/h100_sxm.textproto"\n'
                f'base: "{src}/configs/models/llama3_8b.textproto"\n'
                f'base: "{src}/configs/studies/default.textproto"\n'
                'set: "workload.decode.decode_steps=4"\n'
                'set: "workload.model.layers=4"\n'
                'axes { path: "workload.decode.batch_size" values: ["1", "2", "4", "8"] }\n'
                'axes { path: "workload.decode.context_tokens" values: ["512", "1024"] }\n')
    study = os.path.join(tmp, "study.textproto")
    with open(study, "w") as f:
        f.write(f'name: "kill_study"\n'
                f'base: "{src}/configs/hardware/h100_sxm.textproto"\n'
                f'base: "{src}/configs/models/llama3_8b.textproto"\n'
                f'base: "{src}/configs/studies/default.textproto"\n'
                'set: "workload.decode.decode_steps=4"\n'
                'set: "workload.model.layers=4"\n'
                'baseline { name: "b1" }\n'
                'mechanisms { name: "b4" set: "workload.decode.batch_size=4" }\n'
                'seeds: 2\nseed_base: 1\n')
    return sweep, study


def check_plan(tiersim, tmp, rng, kills, command, spec, extra):
    ref = os.path.join(tmp, f"{command}_ref")
    t0 = time.time()
    run_ok([tiersim, command, spec, "--out", ref, "--jobs", "2", "--quiet"] + extra)
    duration = time.time() - t0
    out = os.path.join(tmp, f"{command}_killed")
    for _ in range(kills):
        kill_after([tiersim, command, spec, "--out", out, "--jobs", "2", "--quiet"] + extra,
                   rng.uniform(0, duration * 1.1))
        for h5 in glob.glob(os.path.join(out, "points", "*.h5")):
            if report(tiersim, h5)[0] != 0:
                raise Failure(f"a killed {command} left an unreadable point file {h5}")
    run_ok([tiersim, command, spec, "--out", out, "--jobs", "2", "--quiet"] + extra)
    if table(os.path.join(out, "summary.csv")) != table(os.path.join(ref, "summary.csv")):
        raise Failure(f"the resumed {command}'s table differs from an uninterrupted one")
    if partials(out):
        raise Failure(f"partial files left: {partials(out)}")
    if glob.glob(os.path.join(out, "points", "*.err")):
        raise Failure("stale .err files of completed points")


def main():
    tiersim, src = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    kills = int(sys.argv[3]) if len(sys.argv) > 3 else 4
    rng = random.Random(20261203)
    failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        sweep, study = write_specs(src, tmp)
        checks = [("run", lambda: check_run(tiersim, src, tmp, rng, kills)),
                  ("sweep", lambda: check_plan(tiersim, tmp, rng, kills, "sweep", sweep, [])),
                  ("study", lambda: check_plan(tiersim, tmp, rng, kills, "study", study,
                                               ["--no-report"]))]
        for name, check in checks:
            try:
                check()
                print(f"ok   {name} killed {kills} times")
            except Failure as e:
                failed += 1
                print(f"FAIL {name}: {e}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
