#!/usr/bin/python3
"""Golden summaries: every shipped study, validation row and sweep point, bit for bit.

usage: tests/golden/golden.py check|update|list [--all] [--full] [--only NAME[,NAME...]]
                                              [--jobs N] [--binary PATH]

Cases: the runs of tests/golden/cases.json (a shipped study with the config files its header
documents), every row of configs/validation/rows.json (validation_<id>; rows on the same
config files are one case, the first row's; rows with "golden": false have none), every sweep spec in
configs/sweeps/ (sweep_<name>: all its points) and every what-if study in
configs/studies/whatif/ (study_<name>: all its points and seeds). Each case's summary is the
result file's /summary (`tiersim report --json`) or, for sweeps and studies, the rows of
summary.csv; wall time is left out, everything else must match exactly (numbers are compared
as the 17-digit decimals the binary prints, so a change in the last bit fails). A validation
case also checks every row it runs against its tolerance (scripts/validate's metric, on the
same result file), so the full validation of a row with a golden case is one run, not two.

Reduced cases: the what-if studies and sweeps that cases.json's `reduced` names (the heaviest,
minutes each) run with its --set overrides (fewer requests or steps, every variant and point
still run, each mechanism still acting), so that the full test set stays within its time
budget; their shipped size is checked with --full against summaries/full/<case>.json. A change
that moves results updates both (`update --all`, then `update --full --only` the reduced
cases).

check   runs the cases (the `fast` ones unless --all) and fails (exit 1) on any difference,
        on a case without a committed summary, or on a committed summary without a case.
update  rewrites tests/golden/summaries/<case>.json (with --full, a reduced case's
        summaries/full/<case>.json) from the current binary: run it only
        when a change of results is intended, and say why in the commit (it writes a
        validation case out of tolerance too, and fails).
list    prints the cases, fast ones marked, reduced ones with their overrides.
--full  the reduced cases at their shipped size: alone, only them; with --all or --only, the
        others as usual. Nothing runs it automatically: run it before refreshing a reduced
        study's report, and `update --full --only` them when a change moves results.
Environment: TIERSIM_BINARY (default build/tiersim); --binary overrides it.
"""
import argparse
import concurrent.futures
import csv
import glob
import importlib.machinery
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
SUMMARIES = os.path.join(HERE, "summaries")


def load_validate():
    """scripts/validate as a module (its metric and published_range)."""
    path = os.path.join(REPO, "scripts", "validate")
    loader = importlib.machinery.SourceFileLoader("tiersim_validate", path)
    spec = importlib.util.spec_from_loader("tiersim_validate", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def drop_wall_time(d):
    return {k: v for k, v in d.items() if "wall_time" not in k}


def cases():
    """name -> (kind, payload, fast)."""
    with open(os.path.join(HERE, "cases.json")) as f:
        spec = json.load(f)
    fast = set(spec.get("fast", []))
    reduced = {k: v for k, v in spec.get("reduced", {}).items() if not k.startswith("_")}
    out = {}
    for run in spec["runs"]:
        files = [os.path.join("configs", c + ".textproto") for c in run["configs"]]
        out[run["name"]] = ("run", {"files": files, "set": run.get("set", [])},
                            bool(run.get("fast")))
    with open(os.path.join(REPO, "configs/validation/rows.json")) as f:
        rows = json.load(f)["rows"]
    seen = {}
    for row in rows:
        # Rows on the same config files (one run, several metrics) are one case: the first's;
        # the case checks each of them against its tolerance. Rows with golden false (the
        # serving energy rows, minutes each) are left to their tolerance check in the
        # validation_slow_rows test.
        if row.get("golden", True) is False:
            continue
        key = (tuple(row["configs"]), tuple(row.get("set", [])), tuple(row.get("args", [])))
        if key in seen:
            seen[key]["rows"].append(row)
            continue
        name = "validation_" + row["id"]
        files = [os.path.join("configs", c + ".textproto") for c in row["configs"]]
        if row.get("command") == "collective":
            out[name] = ("collective", {"files": files, "args": row["args"], "rows": [row]},
                         name in fast)
        else:
            out[name] = ("run", {"files": files, "set": row.get("set", []), "rows": [row]},
                         name in fast)
        seen[key] = out[name][1]
    for path in sorted(glob.glob(os.path.join(REPO, "configs/sweeps/*.textproto"))):
        name = "sweep_" + os.path.splitext(os.path.basename(path))[0]
        out[name] = ("sweep", {"spec": os.path.relpath(path, REPO)}, name in fast)
    for path in sorted(glob.glob(os.path.join(REPO, "configs/studies/whatif/*.textproto"))):
        name = "study_" + os.path.splitext(os.path.basename(path))[0]
        out[name] = ("study", {"spec": os.path.relpath(path, REPO)}, name in fast)
    for name, r in reduced.items():
        if (name not in out or out[name][0] not in ("sweep", "study") or set(r) != {"set"}
                or not isinstance(r["set"], list) or not r["set"]):
            raise SystemExit("golden: cases.json: reduced.%s must name a sweep or what-if "
                             "study and hold only \"set\", a non-empty list" % name)
        out[name][1]["reduced_set"] = r["set"]
    # Every shipped single-run study must be covered by a run case.
    covered = {f for kind, p, _ in out.values() if kind == "run" for f in p["files"]}
    for path in sorted(glob.glob(os.path.join(REPO, "configs/studies/*.textproto"))):
        rel = os.path.relpath(path, REPO)
        if rel not in covered:
            raise SystemExit("golden: %s is a shipped study without a case in cases.json" % rel)
    return out


def tolerance_failures(validate, rows, out):
    """Each validation row the case runs, against its tolerance: the failures' lines."""
    lines = []
    for row in rows:
        predicted = validate.metric(row, out)
        if "range_pj_per_bit" in row:
            lo, hi = validate.published_range(row, out)
            measured, tolerance = (lo + hi) / 2, (hi - lo) / (hi + lo) * 100.0
        else:
            measured, tolerance = row["measured"], row["tolerance_pct"]
        err = (predicted - measured) / measured * 100.0
        if abs(err) > tolerance:
            lines.append("  row %s: predicted %.6g, measured %.6g %s (%+.1f%%, tolerance %g%%)"
                         % (row["id"], predicted, measured, row["unit"], err, tolerance))
    return lines


def summary_path(name, payload, full):
    """Where a case's committed summary lives: a reduced case's shipped size under full/."""
    if full and "reduced_set" in payload:
        return os.path.join(SUMMARIES, "full", name + ".json")
    return os.path.join(SUMMARIES, name + ".json")


def run_case(binary, name, kind, payload, tmp, validate):
    """Returns (the case's summary, tolerance failures): the summary a dict, or for sweeps and
    studies a dict of rows; the failures, lines for a validation case's rows out of tolerance."""
    work = os.path.join(tmp, name)
    os.makedirs(work, exist_ok=True)
    started = time.monotonic()
    summary, out_of_tolerance = run_case_in(binary, kind, payload, work, validate)
    return summary, out_of_tolerance, time.monotonic() - started


def run_case_in(binary, kind, payload, work, validate):
    if kind == "run":
        out = os.path.join(work, "run.h5")
        cmd = [binary, "run", *payload["files"], "--out", out, "--quiet"]
        for s in payload["set"]:
            cmd += ["--set", s]
        subprocess.run(cmd, cwd=REPO, check=True, stdout=subprocess.DEVNULL)
        text = subprocess.run([binary, "report", out, "--json"], cwd=REPO, check=True,
                              capture_output=True, text=True).stdout
        # Parse numbers as their printed text: the comparison is of the printed decimals.
        summary = json.loads(text, parse_float=str, parse_int=str)
        return drop_wall_time(summary), tolerance_failures(validate, payload.get("rows", []), out)
    if kind == "collective":
        # The printed table, row by row (each value as printed).
        out = os.path.join(work, "collective.h5")
        text = subprocess.run([binary, "collective", *payload["files"], *payload["args"],
                               "--out", out],
                              cwd=REPO, check=True, capture_output=True, text=True).stdout
        rows = {}
        moe = any(a.startswith("moe_") for a in payload["args"])
        for line in text.splitlines():
            if line.startswith("#") or line.startswith("results: ") or not line.strip():
                continue
            f = line.split()
            if moe:  # one routed all-to-all (--op moe_dispatch or moe_combine)
                rows["moe"] = dict(zip(("time_us", "rdma_gb_per_s", "nvl_gb_per_s",
                                        "link_bytes", "link_energy_uj"), f))
                continue
            rows["size " + f[0]] = {"time_us": f[1], "algbw_gb_per_s": f[2],
                                    "busbw_gb_per_s": f[3], "algorithm": f[4],
                                    "link_energy_uj": f[5]}
            if len(f) > 6:  # the protocol, with software.collective_protocols
                rows["size " + f[0]]["protocol"] = f[6]
        return rows, tolerance_failures(validate, payload["rows"], out)
    out = os.path.join(work, "out")
    # Two processes per sweep or study: results do not depend on it, and the longest study
    # (started first) then ends with the other cases instead of alone.
    cmd = [binary, kind, payload["spec"], "--out", out, "--quiet", "--jobs", "2"]
    for s in payload.get("set", []):
        cmd += ["--set", s]
    if kind == "study":
        cmd.append("--no-report")
    subprocess.run(cmd, cwd=REPO, check=True, stdout=subprocess.DEVNULL)
    rows = {}
    with open(os.path.join(out, "summary.csv")) as f:
        for row in csv.DictReader(f):
            key = "point %s replicate %s" % (row["point"], row["replicate"])
            rows[key] = drop_wall_time(row)
    return rows, []


def diff(expected, actual, prefix=""):
    lines = []
    for k in sorted(set(expected) | set(actual)):
        e, a = expected.get(k), actual.get(k)
        if isinstance(e, dict) and isinstance(a, dict):
            lines += diff(e, a, prefix + k + ": ")
        elif e != a:
            lines.append("  %s%s: expected %s, got %s" % (prefix, k, e, a))
    return lines


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("mode", choices=["check", "update", "list"])
    ap.add_argument("--all", action="store_true", help="every case, not only the fast ones")
    ap.add_argument("--full", action="store_true",
                    help="the reduced cases at their shipped size (summaries/full/)")
    ap.add_argument("--only", help="comma-separated case names")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--binary", default=os.environ.get("TIERSIM_BINARY",
                                                        os.path.join(REPO, "build/tiersim")))
    args = ap.parse_args(argv)
    all_cases = cases()
    for name, (kind, payload, _) in all_cases.items():
        if "reduced_set" in payload and not args.full:
            payload["set"] = payload["reduced_set"]
    if args.mode == "list":
        for name, (kind, payload, fast) in all_cases.items():
            reduced = (" reduced: " + " ".join(payload["reduced_set"])
                       if "reduced_set" in payload else "")
            print("%-45s %-6s %s%s" % (name, kind, "fast" if fast else "", reduced))
        return 0
    if args.only:
        names = args.only.split(",")
        unknown = [n for n in names if n not in all_cases]
        if unknown:
            print("golden: unknown case(s): " + ", ".join(unknown), file=sys.stderr)
            return 2
    else:
        names = [n for n, (_, p, fast) in all_cases.items()
                 if args.all or ("reduced_set" in p if args.full else fast)]
    failed = []
    if args.mode == "check":
        stale = sorted(os.path.splitext(f)[0] for f in os.listdir(SUMMARIES)
                       if f.endswith(".json") and os.path.splitext(f)[0] not in all_cases)
        for n in stale:
            failed.append(n)
            print("golden: summaries/%s.json has no case (remove it or add the case)" % n)
        full_dir = os.path.join(SUMMARIES, "full")
        for f in sorted(os.listdir(full_dir) if os.path.isdir(full_dir) else []):
            n = os.path.splitext(f)[0]
            if f.endswith(".json") and "reduced_set" not in all_cases.get(n, ("", {}, 0))[1]:
                failed.append("full/" + n)
                print("golden: summaries/full/%s.json is not a reduced case's (remove it, or "
                      "reduce the case in cases.json)" % n)
        for n in names:
            # The summary this run compares with, and a reduced case's shipped-size one.
            p = all_cases[n][1]
            for path in sorted({summary_path(n, p, args.full), summary_path(n, p, True)}):
                if not os.path.exists(path):
                    full = os.path.dirname(path) == full_dir
                    failed.append(n)
                    print("golden: %s has no committed summary%s (run golden.py update --only "
                          "%s%s)" % (n, " at its shipped size" if full else "", n,
                                     " --full" if full else ""))
        names = [n for n in names if n not in failed]
    # The long cases first (studies, then sweeps), so that the pool's workers end together.
    names.sort(key=lambda n: {"study": 0, "sweep": 1}.get(all_cases[n][0], 2))
    validate = load_validate()
    tmp = tempfile.mkdtemp(prefix="tiersim_golden_")
    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
            futures = {pool.submit(run_case, args.binary, n, *all_cases[n][:2], tmp, validate): n
                       for n in names}
            for fut in concurrent.futures.as_completed(futures):
                n = futures[fut]
                path = summary_path(n, all_cases[n][1], args.full)
                shown = os.path.relpath(path, SUMMARIES)
                try:
                    actual, out_of_tolerance, seconds = fut.result()
                except subprocess.CalledProcessError as e:
                    failed.append(n)
                    print("golden: %s: the run failed (exit %d): %s"
                          % (n, e.returncode, " ".join(e.cmd)))
                    continue
                except Exception as e:  # a metric that cannot be read from the result
                    failed.append(n)
                    print("golden: %s: %s" % (n, e))
                    continue
                if out_of_tolerance:
                    failed.append(n)
                    print("golden: %s is out of its validation tolerance:" % n)
                    print("\n".join(out_of_tolerance))
                if args.mode == "update":
                    os.makedirs(os.path.dirname(path), exist_ok=True)
                    tmp_path = path + ".tmp"
                    with open(tmp_path, "w") as f:
                        json.dump(actual, f, indent=1, sort_keys=True)
                        f.write("\n")
                    os.replace(tmp_path, path)
                    print("golden: wrote summaries/%s (%.1f s)" % (shown, seconds))
                    continue
                with open(path) as f:
                    expected = json.load(f)
                lines = diff(expected, actual)
                if lines:
                    failed.append(n)
                    print("golden: %s differs from its committed summary:" % n)
                    print("\n".join(lines[:40]))
                    if len(lines) > 40:
                        print("  ... %d more" % (len(lines) - 40))
                elif not out_of_tolerance:
                    print("golden: %s identical (%.1f s)" % (n, seconds))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if failed:
        failed = sorted(set(failed))
        print("golden: %d case(s) failed: %s" % (len(failed), ", ".join(failed)))
        return 1
    print("golden: %d case(s) identical (validation rows within tolerance)" % len(names)
          if args.mode == "check" else "")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
