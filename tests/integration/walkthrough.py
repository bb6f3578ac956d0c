#!/usr/bin/python3
"""A newcomer's walk through README.md and docs/sweeps.md.

Every command those pages show is taken from the pages themselves, in page order, and run in a
scratch directory laid out like the repository (configs/, scripts/, build/tiersim):

- fenced `sh` blocks: each command (backslash continuations joined, `# comments` dropped,
  `a && b` run as two) must exit 0;
- plain blocks of `$ command` lines: each command runs, and every output line the page shows
  under it (except `...`) must be printed by it, word for word; a command whose shown output is
  an error must exit 2;
- fenced `python` blocks run with Debian's python3; a line `EXPR  # "value"` becomes a check
  that EXPR equals that value;
- a plain block that shows a spec (`name: "X"` first) must equal the shipped configs/**/X.textproto
  (comments and layout aside);
- commands quoted in running text (`build/tiersim ...`, `tiersim ...`, `scripts/...`): concrete
  ones (`build/tiersim` or a script, with arguments and no placeholder) run; synopses (SPEC,
  DIR, [...]), `tiersim CMD` mentions and bare names must name a tiersim command or an
  executable script.

Small versions and the commands not run here are declared below, each with its reason, and each
declaration must still match something on the pages (a stale one fails). So a page that shows
a command that no longer works, output that changed, or a spec that drifted from its file fails
this test.

usage: walkthrough.py TIERSIM_BINARY SOURCE_DIR
"""
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time

PAGES = ["README.md", "docs/sweeps.md"]

# Shown, not run here (exact command text -> why).
NOT_RUN = {
    "scripts/run": "CI's .ci/run runs it after the tests",
    "scripts/test": "CI's .ci/run runs it (`scripts/test --all` runs this walk-through)",
    "scripts/setup": "scripts/test runs it before any test (it installs packages with apt)",
    "scripts/bench": "minutes of Google Benchmark timings; built by every build, run by hand",
    "scripts/validate": "CTest's validation and validation_slow_rows run it, row by row",
    "scripts/sanitize": "CI's .ci/run runs it after the tests",
}

# Small versions: a command matching `match` gets `replace` pairs applied and `append` added.
SMALLER = [
    {
        "match": r"--set run\.fidelity=DETAILED",
        "append": ["--set", "workload.model.layers=1", "--set", "workload.model.vocab_size=1024"],
        "why": "the command-level HBM model takes ~5 minutes for one step of the whole 8B "
               "model; one layer and a 1k vocabulary take the same path in ~8 s",
    },
    {
        "match": r"^build/tiersim membench ",
        "append": ["--duration-us", "5", "--points", "1,16,256"],
        "why": "three loads of the refresh-safe minimum instead of eleven: 26 s -> 6 s",
    },
    {
        "match": r"^build/tiersim study configs/studies/whatif/thermal_admission_llama3_8b\.textproto "
                 r"--out runs/thermal$",
        "append": ["--set", "workload.serving.poisson.requests=4",
                   "--set", "workload.serving.output_tokens.lognormal.median=32"],
        "why": "the full study is 16 runs of 60 long-context requests (7 minutes); the page's "
               "own small version is the same with these overrides",
    },
    {
        "match": r"^build/tiersim report out/default\.h5$",
        "before": ["build/tiersim", "run", "configs/hardware/h100_sxm.textproto",
                   "configs/models/llama3_8b.textproto", "configs/studies/default.textproto",
                   "--out", "out/default.h5", "--quiet"],
        "why": "out/default.h5 is what scripts/run writes; made here with the decode scripts/run "
               "runs",
    },
    {
        "match": r"<study>",
        "replace": [("/tmp/<study>", "tmp/kv_fp8_mixtral"), ("<study>", "kv_fp8_mixtral")],
        "why": "the page's placeholder, filled with the smallest shipped study (12 runs, 3 s)",
    },
    {
        "match": r"^build/tiersim run \.\.\. ",
        "replace": [("run ... ", "run configs/hardware/h100_sxm.textproto "
                     "configs/models/llama3_8b.textproto configs/studies/default.textproto ")],
        "why": "the page elides the config files; the README's first run's files",
    },
    {
        "match": r"^scripts/study_report DIR$",
        "replace": [("DIR", "runs/kv_fp8")],
        "why": "the page's placeholder: the study directory the README made",
    },
]

# Python blocks: the page's placeholders.
PYTHON_PLACEHOLDERS = [('"DIR/', '"runs/bc/'), ('"run.h5"', '"out/batch16.h5"')]

# Output a page shows that depends on the terminal or the clock.
VOLATILE = [re.compile(r"^\[sweep\] ")]  # the progress line: only on a terminal

# Synopsis markers: an upper-case argument name, an optional group (" [--x]": a bracket after a
# space, not a field index like components[hbm]), <name>, "...".
PLACEHOLDER = re.compile(r"\b(SPEC|DIR|FILE|FILES|TABLE|RESULT|COMMAND|PATH|N|K|T|M|A|Q|P)\b"
                         r"|(^|\s)\[|<[a-z]+>|\.\.\.")
FENCE = re.compile(r"^```(\w*)\s*$")


class Failure(Exception):
    pass


def page_items(text, page):
    """Yields ("block", lang, lines, line_no) and ("inline", command, line_no) in page order."""
    lines = text.split("\n")
    i = 0
    prose = []  # (line_no, text) of running text since the last block
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            prose.append((i + 1, lines[i]))
            i += 1
            continue
        yield from inline_commands(prose)
        prose = []
        start, lang = i + 1, m.group(1)
        i += 1
        body = []
        while i < len(lines) and not lines[i].startswith("```"):
            body.append(lines[i])
            i += 1
        if i >= len(lines):
            raise Failure("%s:%d: unterminated code block" % (page, start))
        i += 1
        yield ("block", lang, body, start)
    yield from inline_commands(prose)


def inline_commands(prose):
    # Code spans may wrap across lines of a paragraph.
    text = "\n".join(t for _, t in prose)
    for m in re.finditer(r"`([^`]+)`", text):
        span = " ".join(m.group(1).split())
        if re.match(r"^(build/tiersim|tiersim|scripts/)", span):
            line_no = prose[0][0] + text.count("\n", 0, m.start()) if prose else 0
            yield ("inline", span, line_no)


def sh_commands(body):
    joined, cur = [], ""
    for line in body:
        if line.rstrip().endswith("\\"):
            cur += line.rstrip()[:-1] + " "
            continue
        cur += line
        if cur.strip():
            joined.append(cur.strip())
        cur = ""
    out = []
    for c in joined:
        words = shlex.split(c, comments=True)
        part = []
        for w in words:
            if w == "&&":
                out.append(part)
                part = []
            else:
                part.append(w)
        if part:
            out.append(part)
    return out


class Walk:
    def __init__(self, binary, src, work):
        self.binary, self.src, self.work = binary, src, work
        self.used = set()
        self.ran, self.skipped, self.checked = [], [], []
        self.env = dict(os.environ)
        self.env["PATH"] = "/usr/bin:/bin:" + self.env.get("PATH", "")
        self.env["MPLBACKEND"] = "Agg"
        self.help = subprocess.run([binary, "--help"], capture_output=True, text=True).stdout

    def small(self, words):
        text = " ".join(words)
        before = None
        for k, rule in enumerate(SMALLER):
            if not re.search(rule["match"], text):
                continue
            self.used.add(k)
            for old, new in rule.get("replace", []):
                text = text.replace(old, new)
            words = shlex.split(text) + rule.get("append", [])
            text = " ".join(words)
            before = rule.get("before", before)
        return words, before

    def run(self, words, where, expect_code=0):
        t0 = time.monotonic()
        r = subprocess.run(words, cwd=self.work, env=self.env, capture_output=True, text=True,
                           timeout=900)
        wall = time.monotonic() - t0
        shown = " ".join(shlex.quote(w) for w in words)
        if r.returncode != expect_code:
            raise Failure("%s: `%s` exited %d (expected %d)\nstdout:\n%s\nstderr:\n%s" % (
                where, shown, r.returncode, expect_code, r.stdout[-3000:], r.stderr[-3000:]))
        self.ran.append((where, shown, wall))
        for i, w in enumerate(words[:-1]):
            if w == "--out" and not words[i + 1].startswith("-") and expect_code == 0:
                path = os.path.join(self.work, words[i + 1])
                if not os.path.exists(path):
                    raise Failure("%s: `%s` did not write %s" % (where, shown, words[i + 1]))
        return r

    def command(self, words, where, expect_code=0):
        text = " ".join(words)
        if text in NOT_RUN:
            self.skipped.append((where, text, NOT_RUN[text]))
            return None
        words, before = self.small(words)
        if before:
            self.run(before, where + " (set-up)")
        if words[0] in ("build/tiersim", "tiersim"):
            words = [os.path.join(self.work, "build", "tiersim")] + words[1:]
        return self.run(words, where, expect_code)

    def block(self, lang, body, where):
        if lang == "sh":
            for words in sh_commands(body):
                self.command(words, where)
        elif lang == "python":
            self.python(body, where)
        elif lang == "" and body and body[0].startswith("$ "):
            self.transcript(body, where)
        elif lang == "" and body and body[0].startswith("name: "):
            self.spec(body, where)
        elif lang == "" and body and all(l.startswith("tiersim ") for l in body if l.strip()):
            for l in body:
                if l.strip():
                    self.synopsis(l.split("#")[0].strip(), where)
        else:
            raise Failure("%s: a code block this walk-through does not know how to check "
                          "(lang %r, first line %r): teach it" % (where, lang, body[:1]))

    def transcript(self, body, where):
        groups = []
        for line in body:
            if line.startswith("$ "):
                groups.append((line[2:], []))
            elif groups:
                groups[-1][1].append(line)
        for cmd, expected in groups:
            words = shlex.split(cmd)
            wanted = [l for l in expected if l.strip() and l.strip() != "..." and
                      not any(v.search(l) for v in VOLATILE)]
            is_error = any(re.match(r"^(--set\[\d+\]|[\w./-]+:\d+: |tiersim[ :])", l)
                           for l in wanted)
            r = self.command(words, where, 2 if is_error else 0)
            if r is None:
                continue
            printed = [l.split() for l in (r.stdout + "\n" + r.stderr).split("\n")]
            for l in wanted:
                if l.split() not in printed:
                    raise Failure("%s: `%s` did not print the line the page shows:\n  %s\n"
                                  "it printed:\n%s\n%s" % (where, cmd, l, r.stdout[-3000:],
                                                          r.stderr[-2000:]))
                self.checked.append((where, l))

    def python(self, body, where):
        code = []
        for line in body:
            for old, new in PYTHON_PLACEHOLDERS:
                line = line.replace(old, new)
            m = re.match(r'^(\S[^=#]*?)\s+#\s+("[^"]*")\s*$', line)
            if m and "=" not in m.group(1).replace("==", ""):
                line = "assert (%s) == %s, %s" % (m.group(1), m.group(2), repr(line))
                self.checked.append((where, line))
            code.append(line)
        self.run(["/usr/bin/python3", "-c", "\n".join(code)], where)

    def spec(self, body, where):
        name = re.match(r'^name: "([^"]+)"', body[0]).group(1)
        found = []
        for root, _, files in os.walk(os.path.join(self.src, "configs")):
            if name + ".textproto" in files:
                found.append(os.path.join(root, name + ".textproto"))
        if len(found) != 1:
            raise Failure("%s: the page shows spec %r; configs/ has %d files of that name" % (
                where, name, len(found)))
        strip = lambda ls: [l.rstrip() for l in ls if l.strip() and not l.startswith("#")]
        shipped = strip(open(found[0]).read().split("\n"))
        if " ".join(strip(body)).split() != " ".join(shipped).split():  # layout aside
            raise Failure("%s: the spec the page shows differs from %s:\npage:\n%s\nfile:\n%s" % (
                where, os.path.relpath(found[0], self.src), "\n".join(strip(body)),
                "\n".join(shipped)))
        self.checked.append((where, "spec " + os.path.relpath(found[0], self.src)))

    def synopsis(self, text, where):
        words = text.split()
        if words[0] in ("build/tiersim", "tiersim"):
            sub = words[1] if len(words) > 1 else ""
            if sub and not re.search(r"(^|\n)  %s\b" % re.escape(sub), self.help):
                raise Failure("%s: `%s`: tiersim --help has no command %r" % (where, text, sub))
        else:
            path = os.path.join(self.src, words[0])
            if not os.access(path, os.X_OK):
                raise Failure("%s: `%s`: %s is not an executable script" % (where, text, words[0]))
        self.checked.append((where, "synopsis `%s`" % text))

    def inline(self, text, where):
        words = text.split()
        if text in NOT_RUN:
            self.skipped.append((where, text, NOT_RUN[text]))
            return
        # Fill the placeholders declared as small versions first; what is left is a synopsis.
        filled, _ = self.small(words)
        if len(words) == 1 or words[0] == "tiersim" or PLACEHOLDER.search(" ".join(filled)):
            self.synopsis(text, where)
            return
        self.command(shlex.split(text), where)


def main(binary, src):
    binary, src = os.path.abspath(binary), os.path.abspath(src)
    with tempfile.TemporaryDirectory(prefix="tiersim_walk_") as work:
        os.symlink(os.path.join(src, "configs"), os.path.join(work, "configs"))
        os.symlink(os.path.join(src, "scripts"), os.path.join(work, "scripts"))
        os.makedirs(os.path.join(work, "build"))
        os.symlink(binary, os.path.join(work, "build", "tiersim"))
        walk = Walk(binary, src, work)
        t0 = time.monotonic()
        try:
            for page in PAGES:
                text = open(os.path.join(src, page)).read()
                for item in page_items(text, page):
                    if item[0] == "block":
                        _, lang, body, line = item
                        walk.block(lang, body, "%s:%d" % (page, line))
                    else:
                        _, span, line = item
                        walk.inline(span, "%s:%d" % (page, line))
            stale = [r["why"] for k, r in enumerate(SMALLER) if k not in walk.used]
            if stale:
                raise Failure("small-version rules that match no command on the pages "
                              "(remove them): %s" % stale)
            shown = {t for _, t, _ in walk.skipped}
            unused = [c for c in NOT_RUN if c not in shown]
            if unused:
                raise Failure("NOT_RUN entries no page shows (remove them): %s" % unused)
        except Failure as e:
            print("walkthrough: FAILED\n%s" % e, file=sys.stderr)
            return 1
        for where, cmd, wall in walk.ran:
            print("ran   %-20s %6.1f s  %s" % (where, wall, cmd[:150]))
        for where, cmd, why in walk.skipped:
            print("shown %-20s not run: %s (%s)" % (where, cmd, why))
        print("walkthrough ok: %d commands ran, %d checks of shown output, specs and synopses, "
              "%d shown commands not run (reasons above); %.0f s" % (
                  len(walk.ran), len(walk.checked), len(walk.skipped), time.monotonic() - t0))
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1], sys.argv[2]))
