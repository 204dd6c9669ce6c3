"""Provenance of a run: what went in (sha256 of every input file, the resolved config), what ran
it (package versions, Snakemake, Python, git commit and whether the code was edited since), and
what came out (sha256 of every published file). No timestamps: an identical run gives an
identical file."""

from __future__ import annotations

import hashlib
import json
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGES = (
    "cohort",
    "numpy",
    "pandas",
    "scipy",
    "statsmodels",
    "matplotlib",
    "pyarrow",
    "jsonschema",
    "pyyaml",
    "snakemake",
)
SOURCE_PATHS = ("Snakefile", "rules", "scripts", "src", "config")


def sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def git_state(repo: str | Path) -> dict[str, Any]:
    """HEAD commit and whether the workflow's code or config differ from it (results/ and data
    are not counted: a run writes them)."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(repo), *args], capture_output=True, text=True, check=True
        ).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--", *SOURCE_PATHS))
    except (subprocess.CalledProcessError, FileNotFoundError):
        return {"commit": None, "code_differs_from_commit": None, "note": "not a git checkout"}
    return {"commit": commit, "code_differs_from_commit": dirty}


def provenance(
    inputs: dict[str, list[str]], outputs: list[str], config: dict[str, Any], repo: str | Path
) -> dict[str, Any]:
    """The provenance record (see the module docstring)."""
    return {
        "inputs": {
            group: {p: sha256(p) for p in sorted(paths)} for group, paths in sorted(inputs.items())
        },
        "outputs": {p: sha256(p) for p in sorted(outputs)},
        "config": config,
        "software": package_versions(),
        "git": git_state(repo),
    }


def write_provenance(record: dict[str, Any], path: str | Path) -> None:
    Path(path).write_text(
        json.dumps(record, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8"
    )
