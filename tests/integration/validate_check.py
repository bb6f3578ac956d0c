#!/usr/bin/python3
"""Runs scripts/validate --json; fails when a row is out of tolerance or a key is missing."""
import json
import subprocess
import sys

repo = sys.argv[1]
p = subprocess.run([sys.executable, repo + "/scripts/validate", "--json"], capture_output=True,
                   text=True)
if p.returncode not in (0, 1):
    print(p.stderr, file=sys.stderr)
    sys.exit(1)
rows = json.loads(p.stdout)
keys = {"id", "predicted", "measured", "unit", "tolerance_pct", "ok"}
ids = {r["id"] for r in rows}
bad = False
for want in ("V1", "V2", "V3", "V4", "V5-64", "V5-128", "V5-8192", "V6-6.7B", "V6-30B"):
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
