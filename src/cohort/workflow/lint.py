"""`python -m cohort lint` (make lint): Snakemake's linter, with the remarks this workflow leaves
on purpose accepted and any other one failing.

The documented remarks (README, Linting): no rule names a conda environment or container (the
environment is the lock files, installed by make), and rules/common.smk holds the helper
functions that the rule modules share (the linter asks for such a module, then flags it).
`snakemake --lint` exits 1 whenever it has a remark, so its exit code cannot tell these from a
new one."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

DOCUMENTED_REMARKS = {
    "Specify a conda environment or container for each rule.",
    "Mixed rules and functions in same snakefile.",
}


def remarks(lint_output: str) -> set[str]:
    """The kinds of remark in `snakemake --lint` output (its lines '* <remark>:')."""
    found = set()
    for line in lint_output.splitlines():
        text = line.strip()
        if text.startswith("* "):
            found.add(text[2:].rstrip(":"))
    return found


def unexplained(lint_output: str) -> set[str]:
    """Remarks that are not documented as deliberate."""
    return remarks(lint_output) - DOCUMENTED_REMARKS


def run_lint(workdir: Path) -> int:
    """Run `snakemake --lint` in `workdir`; 0 if only documented remarks remain, else 1 with
    the others printed."""
    snakemake = Path(sys.executable).parent / "snakemake"
    result = subprocess.run([str(snakemake), "--lint"], cwd=workdir, capture_output=True, text=True)
    output = result.stdout + result.stderr
    if result.returncode not in (0, 1) or "Lints for" not in output and result.returncode:
        print(output, file=sys.stderr)
        return 1
    others = unexplained(output)
    for remark in sorted(others):
        print(f"snakemake --lint: {remark}", file=sys.stderr)
    if not others:
        print(
            f"snakemake --lint: only the documented remarks ({len(remarks(output))} kinds); see "
            "README, Linting"
        )
    return 1 if others else 0
