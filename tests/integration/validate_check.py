#!/usr/bin/python3
"""Runs scripts/validate --json [ARGS]; fails when a row is out of tolerance, a key is missing,
or a row the selection names did not run.

usage: validate_check.py REPO [--skip-slow | --slow-only | --only ID[,ID...]] [--without-golden]
"""
import json
import subprocess
import sys

repo = sys.argv[1]
extra = sys.argv[2:]
p = subprocess.run([sys.executable, repo + "/scripts/validate", "--json", *extra],
                   capture_output=True, text=True)
if p.returncode not in (0, 1):
    print(p.stderr, file=sys.stderr)
    sys.exit(1)
rows = json.loads(p.stdout)
keys = {"id", "predicted", "measured", "unit", "tolerance_pct", "ok"}
ids = {r["id"] for r in rows}
bad = False
with open(repo + "/configs/validation/rows.json") as f:
    selected = [r for r in json.load(f)["rows"]]
if "--skip-slow" in extra:
    selected = [r for r in selected if not r.get("slow", False)]
if "--slow-only" in extra:
    selected = [r for r in selected if r.get("slow", False)]
if "--without-golden" in extra:
    selected = [r for r in selected if r.get("golden", True) is False]
if "--only" in extra:
    only = set(extra[extra.index("--only") + 1].split(","))
    selected = [r for r in selected if r["id"] in only]
if not selected:
    print("no rows selected", file=sys.stderr)
    sys.exit(1)
for want in [r["id"] for r in selected]:
    if want not in ids:
        print("missing row " + want, file=sys.stderr)
        bad = True
for r in rows:
    missing = keys - set(r)
    if missing:
        print("%s lacks %s" % (r.get("id"), sorted(missing)), file=sys.stderr)
        bad = True
    ok = abs(r["predicted"] - r["measured"]) / r["measured"] * 100 <= r["tolerance_pct"]
    if ok != r["ok"] or not ok:
        print("%s: predicted %g, measured %g %s, tolerance %g%%" % (
            r["id"], r["predicted"], r["measured"], r["unit"], r["tolerance_pct"]), file=sys.stderr)
        bad = True
    print("%-10s predicted %10.4g measured %10.4g %s" % (r["id"], r["predicted"], r["measured"],
                                                         r["unit"]))
sys.exit(1 if bad else 0)
