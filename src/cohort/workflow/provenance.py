"""Provenance of a run: what went in (sha256 of every input file, the resolved config), what ran
it (package versions, Snakemake, Python, and a content hash of the workflow's code and config,
not a git commit: the file holding the results is part of the commit), what came out (sha256
of every published file and the rule that wrote it), and the lineage (each rule's inputs and
outputs with their sha256). No timestamps: an identical run of the same tree gives an identical
file."""

from __future__ import annotations

import ast
import functools
import hashlib
import json
import platform
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


def _imports(path: Path) -> frozenset[str]:
    """The modules a source file imports (`import a.b`, `from a.b import c`: a.b and a.b.c);
    cached per file and version, as a Snakemake start asks it of the same modules for every
    rule (2 s of each start before, 0.1 s now)."""
    stat = path.stat()
    return _imports_of_version(str(path), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=4096)
def _imports_of_version(path: str, mtime_ns: int, size: int) -> frozenset[str]:
    """`_imports` of one version of a file (the key's mtime and size tell versions apart)."""
    found = set()
    for node in ast.walk(ast.parse(Path(path).read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return frozenset(found)


def imported_modules(script: str | Path, package_dir: str | Path) -> list[Path]:
    """The package's modules a script runs: every `cohort...` module it imports, and theirs, to
    the end (imports inside functions included, as ast sees the whole file), with the
    `__init__.py` of each package on the way. A rule's code input is this set, so editing a
    module reruns the rules that import it and no other (Snakemake tracks a rule's script, not
    what the script imports)."""
    package_dir = Path(package_dir)
    root = package_dir.name  # "cohort"

    def path_of(module: str) -> Path | None:
        parts = module.split(".")
        if parts[0] != root:
            return None
        base = package_dir.joinpath(*parts[1:])
        for candidate in (base.with_suffix(".py"), base / "__init__.py"):
            if candidate.is_file():
                return candidate
        return None

    seen: set[Path] = set()
    todo = [Path(script)]
    while todo:
        current = todo.pop()
        for module in _imports(current):
            parts = module.split(".")
            for depth in range(1, len(parts) + 1):  # the packages on the way and the module
                found = path_of(".".join(parts[:depth]))
                if found is not None and found not in seen:
                    seen.add(found)
                    todo.append(found)
    return sorted(seen)


def directory_files(path: str | Path) -> list[Path]:
    """The files of a directory output, without Snakemake's own marker (.snakemake_timestamp,
    which it writes into every directory output)."""
    return sorted(
        p for p in Path(path).rglob("*") if p.is_file() and not p.name.startswith(".snakemake")
    )


def sha256(path: str | Path) -> str:
    """The file's sha256; of a directory (an output such as tables/html/), the sha256 of its
    files' relative paths and sha256s, in sorted order."""
    if Path(path).is_dir():
        files = directory_files(path)
        listing = "".join(f"{p.relative_to(path).as_posix()} {sha256(p)}\n" for p in files)
        return hashlib.sha256(listing.encode()).hexdigest()
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


def content_hash(hashes: dict[str, str]) -> str:
    """One sha256 over files' paths and sha256s (sorted): the same tree gives the same hash,
    whatever commit holds it, and any edit changes it."""
    text = "".join(f"{path}\t{digest}\n" for path, digest in sorted(hashes.items()))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def provenance(
    inputs: dict[str, list[str]],
    outputs: list[str],
    config: dict[str, Any],
    lineage: dict[str, dict[str, list[str]]],
) -> dict[str, Any]:
    """The provenance record (see the module docstring): the inputs by group with their
    sha256, a content hash of the workflow's code and config, every published output with its
    sha256 and the rule that wrote it, and each rule's inputs and outputs with their sha256
    (lineage: output -> rule -> inputs, and back through the rules that made those)."""
    hashed: dict[str, str] = {}

    def digest(path: str) -> str:
        if path not in hashed:
            hashed[path] = sha256(path)
        return hashed[path]

    groups = {
        group: {p: digest(p) for p in sorted(paths)} for group, paths in sorted(inputs.items())
    }
    code = {
        p: d for group in ("code", "workflow", "config") for p, d in groups.get(group, {}).items()
    }
    writer = {path: rule for rule, files in lineage.items() for path in files["outputs"]}
    # A directory output is published file by file, each under the rule that wrote the directory.
    files = []
    for path in outputs:
        if Path(path).is_dir():
            for inner in directory_files(path):
                files.append(inner.as_posix())
                writer.setdefault(inner.as_posix(), writer.get(path, "provenance"))
        else:
            files.append(path)
    return {
        "inputs": groups,
        "code_sha256": content_hash(code),
        "outputs": {
            p: {"sha256": digest(p), "rule": writer.get(p, "provenance")} for p in sorted(files)
        },
        "rules": {
            rule: {
                "inputs": {p: digest(p) for p in files["inputs"]},
                "outputs": {p: digest(p) for p in files["outputs"]},
            }
            for rule, files in sorted(lineage.items())
        },
        "config": config,
        "software": package_versions(),
    }


def write_provenance(record: dict[str, Any], path: str | Path) -> None:
    Path(path).write_text(
        json.dumps(record, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8"
    )
