"""Outputs kept by the content of what they are made from, so that a rule that reruns remakes
only the outputs whose own inputs changed (R `targets`' per-target invalidation, inside one
Snakemake job): a figure from its tables, a table's HTML from its print form, the suppression
pattern from the register of counts. Snakemake removes a job's outputs before it runs, so the
last versions are kept apart, in `data/processed/cache/` (`output.cache`), under a key: the
sha256 of everything the output is a function of, the source of the package that makes it and
the versions of the libraries included. The same key always stands for the same bytes, so a kept
output is the output the rule would make; results/ stays byte-identical with or without it."""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
from importlib import metadata
from pathlib import Path

log = logging.getLogger(__name__)

LIBRARIES = ("numpy", "pandas", "scipy", "matplotlib", "great-tables", "python-docx")
KEEP = 4  # versions kept per output: an edit and its undoing both find theirs


def package_version() -> str:
    """The sha256 of every source file of the cohort package and the versions of the libraries
    that draw and write outputs: any edit of the code makes every key new."""
    digest = hashlib.sha256()
    package = Path(__file__).resolve().parents[1]
    for path in sorted(package.rglob("*.py")):
        digest.update(path.relative_to(package).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    for name in LIBRARIES:
        try:
            digest.update(f"{name} {metadata.version(name)}\0".encode())
        except metadata.PackageNotFoundError:
            digest.update(f"{name} -\0".encode())
    return digest.hexdigest()


def content_key(*parts: bytes | str) -> str:
    """One sha256 over the parts, each length-prefixed (so that no two lists of parts collide)."""
    digest = hashlib.sha256()
    for part in parts:
        data = part.encode("utf-8") if isinstance(part, str) else part
        digest.update(f"{len(data)}:".encode() + data)
    return digest.hexdigest()


class OutputCache:
    """Kept outputs, by output name (`slot`) and key; `None` as the directory keeps nothing."""

    def __init__(self, directory: str | Path | None, keep: int = KEEP) -> None:
        self.directory = Path(directory) if directory else None
        self.keep = keep
        self.hits: list[str] = []
        self.misses: list[str] = []

    def get(self, slot: str, key: str) -> list[bytes] | None:
        """The kept bytes of the output `slot` made under `key`, or None."""
        if self.directory is None:
            return None
        entry = self.directory / slot / key
        if not entry.is_dir():
            self.misses.append(slot)
            return None
        files = sorted(entry.iterdir(), key=lambda p: int(p.name))
        os.utime(entry)  # recently used: kept longest
        self.hits.append(slot)
        return [p.read_bytes() for p in files]

    def put(self, slot: str, key: str, blobs: list[bytes]) -> None:
        """Keep `blobs` as the output `slot` under `key` (written apart, then renamed into
        place: a job killed on the way leaves no half entry), and only the `keep` most
        recently used versions of the slot."""
        if self.directory is None:
            return
        folder = self.directory / slot
        folder.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=folder, prefix=".new-"))
        for i, blob in enumerate(blobs):
            (staging / str(i)).write_bytes(blob)
        try:
            staging.rename(folder / key)
        except OSError:  # the same key kept by another job meanwhile: the same bytes
            shutil.rmtree(staging, ignore_errors=True)
        versions = sorted(
            (p for p in folder.iterdir() if not p.name.startswith(".")),
            key=lambda p: p.stat().st_mtime_ns,
            reverse=True,
        )
        for old in versions[self.keep :]:
            shutil.rmtree(old, ignore_errors=True)

    def summary(self) -> str:
        """For the rule's log: what was remade and what was kept."""
        return (
            f"output cache: {len(self.hits)} kept ({', '.join(self.hits) or 'none'}), "
            f"{len(self.misses)} remade ({', '.join(self.misses) or 'none'})"
        )
