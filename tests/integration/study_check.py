#!/usr/bin/python3
"""`tiersim study` renders a report: non-empty PNGs and a claims table with 95% intervals; a
study without mechanisms is bad input (exit 2); a study whose baseline fails exits 1 without a
report.

usage: study_check.py TIERSIM_BINARY SOURCE_DIR
"""
import os
import re
import subprocess
import sys
import tempfile


def main(binary, src):
    spec = os.path.join(src, "configs", "studies", "whatif", "kv_fp8_mixtral.textproto")
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "study")
        subprocess.run([binary, "study", spec, "--out", out, "--jobs", "2", "--quiet"],
                       check=True)
        report = open(os.path.join(out, "report", "report.md")).read()
        assert "| Point | Mechanism | Metric | Baseline | Mechanism | Delta | 95% CI | Holds |" \
            in report, report
        rows = [l for l in report.splitlines() if l.startswith("| batch=")]
        assert len(rows) == 6, rows  # 2 points x 1 mechanism x 3 metrics
        for r in rows:
            assert re.search(r"\[[+-]\d+\.\d+%, [+-]\d+\.\d+%\]", r), r
        # FP8 KV halves the KV bytes: fewer HBM bytes per token at both batch sizes.
        hbm = [r for r in rows if "hbm_bytes_per_token" in r]
        assert all(r.endswith("| yes |") for r in hbm), hbm
        for name in ("tpot_ms_mean", "hbm_bytes_per_token", "tokens_per_s"):
            for png in (os.path.join(out, "report", name + ".png"),
                        os.path.join(out, "report", name + "_delta.png")):
                with open(png, "rb") as f:
                    assert f.read(8) == b"\x89PNG\r\n\x1a\n", png
                assert os.path.getsize(png) > 5000, png
        # Provenance: version and revision of the runs, a hash of every base config; one
        # mechanism: no mechanism-against-mechanism table.
        assert "## Provenance" in report and "git revision" in report, report
        assert report.count(": sha256 ") == 3, report
        assert "- Command: `tiersim study " in report and "--jobs 2" in report, report
        assert "## Mechanism against mechanism" not in report
        bad = os.path.join(d, "bad.textproto")
        with open(bad, "w") as f:
            f.write('base: "%s"\nbaseline { name: "b" }\n' % spec)
        r = subprocess.run([binary, "study", bad, "--out", os.path.join(d, "bad")],
                           capture_output=True)
        assert r.returncode == 2, r
        assert b"mechanisms: the study needs at least one mechanism" in r.stderr, r.stderr
        # A baseline whose runs fail leaves nothing to compare with: exit 1, no report.
        failing = os.path.join(d, "failing.textproto")
        cfg = lambda p: '"%s"' % os.path.join(src, "configs", p)
        with open(failing, "w") as f:
            f.write("name: \"failing\"\nbase: %s\nbase: %s\nbase: %s\n"
                    "set: \"workload.decode.decode_steps=2\"\n"
                    "baseline { name: \"b\" set: \"workload.decode.batch_size=0\" }\n"
                    "mechanisms { name: \"m\" }\n" % (
                        cfg("hardware/h100_sxm.textproto"), cfg("models/llama3_2_1b.textproto"),
                        cfg("studies/default.textproto")))
        r = subprocess.run([binary, "study", failing, "--out", os.path.join(d, "failing"),
                            "--quiet"], capture_output=True)
        assert r.returncode == 1, r
        assert b"of the baseline's runs did not complete" in r.stderr, r.stderr
        assert not os.path.exists(os.path.join(d, "failing", "report", "report.md"))
        # Overrides that cannot apply are refused before anything runs (exit 2, nothing
        # written), whether a mechanism's own or the command line's --set.
        typo = os.path.join(d, "typo.textproto")
        with open(typo, "w") as f:
            f.write("name: \"typo\"\nbase: %s\nbase: %s\nbase: %s\n"
                    "baseline { name: \"b\" }\n"
                    "mechanisms { name: \"m\" set: \"workload.decode.batch_sise=2\" }\n" % (
                        cfg("hardware/h100_sxm.textproto"), cfg("models/llama3_2_1b.textproto"),
                        cfg("studies/default.textproto")))
        r = subprocess.run([binary, "study", typo, "--out", os.path.join(d, "typo")],
                           capture_output=True)
        assert r.returncode == 2, r
        assert b'"workload.decode.batch_sise=2" does not apply (point 1: variant=m)' in r.stderr, \
            r.stderr
        assert not os.path.exists(os.path.join(d, "typo"))
        r = subprocess.run([binary, "study", spec, "--out", os.path.join(d, "typo"),
                            "--set", "workload.decode.context_tokenz=1"], capture_output=True)
        assert r.returncode == 2 and b'unknown field "context_tokenz"' in r.stderr, r
        # One that overlaps a variant's own sets is refused: it would lose to that variant.
        r = subprocess.run([binary, "study", spec, "--out", os.path.join(d, "typo"),
                            "--set", "workload.model={kv_dtype: BF16}"], capture_output=True)
        assert r.returncode == 2 and b'overlaps what variant "fp8_kv" sets' in r.stderr, r
        assert not os.path.exists(os.path.join(d, "typo"))
        # A command-line --set applies to every run and is recorded with the plan.
        small = os.path.join(d, "small")
        subprocess.run([binary, "study", spec, "--out", small, "--quiet", "--no-report",
                        "--set", "workload.decode.decode_steps=2"], check=True)
        assert 'set: "workload.decode.decode_steps=2"' in open(
            os.path.join(small, "study.textproto")).read()
        assert "--set workload.decode.decode_steps=2" in open(
            os.path.join(small, "command.txt")).read()
    print("study ok")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
