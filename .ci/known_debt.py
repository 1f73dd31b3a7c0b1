"""Regenerate pyproject.toml's known-debt block from today's ruff and mypy findings.

python .ci/known_debt.py      # in the dev environment (pip install -e ".[dev]")
"""

import collections
import datetime
import json
import os
import re
import subprocess
import sys

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the repository
py = os.path.dirname(sys.executable)  # ruff and mypy of the running environment
begin, end = "# >>> known debt (generated from the findings; see the comment)", "# <<< known debt"
text = open(f"{root}/pyproject.toml").read()
if begin in text:  # findings without the old block
    i, j = text.index(begin), text.index(end) + len(end) + 1
    text = text[:i].rstrip("\n") + "\n" + text[j:]
    open(f"{root}/pyproject.toml", "w").write(text)
ruff_run = subprocess.run(
    [f"{py}/ruff", "check", "dacli", "--output-format", "json"],
    cwd=root,
    capture_output=True,
    text=True,
)
ruff = json.loads(ruff_run.stdout or "[]")
rcodes = collections.defaultdict(set)
for f in ruff:
    rcodes[f["filename"].replace(root + "/", "")].add(f["code"])
out = subprocess.run([f"{py}/mypy", "dacli"], cwd=root, capture_output=True, text=True).stdout
mcodes = collections.defaultdict(collections.Counter)
for line in out.splitlines():
    m = re.match(r"^(dacli/[^:]+)\.py:\d+: error: .*\[([a-z-]+)\]$", line)
    if m:
        mcodes[m.group(1).replace("/", ".").removesuffix(".__init__")][m.group(2)] += 1
day = datetime.date.today().isoformat()
comment = f"""\
# Known debt ({day}, issue 17 item 7): the modules below still carry these findings; CI's
# `ruff check dacli` and `mypy dacli` pass with them and fail on any other finding, here or in
# any other module. Fix a module, then delete its entry (mypy: count of errors per code)."""
block = [begin, *comment.splitlines(), "[tool.ruff.lint.per-file-ignores]"]
for p, cs in sorted(rcodes.items()):
    block.append(f'"{p}" = [{", ".join(f"{chr(34)}{c}{chr(34)}" for c in sorted(cs))}]')
for module, counter in sorted(mcodes.items()):
    codes = ", ".join(f'"{c}"' for c in sorted(counter))
    counts = ", ".join(f"{c} {n}" for c, n in sorted(counter.items()))
    block += [
        "",
        "[[tool.mypy.overrides]]",
        f'module = "{module}"  # {counts}',
        f"disable_error_code = [{codes}]",
    ]
block.append(end)
text = text.rstrip("\n") + "\n\n" + "\n".join(block) + "\n"
open(f"{root}/pyproject.toml", "w").write(text)
print("\n".join(block))
