"""cohort: reproducible analysis of a physiotherapist-led rehabilitation cohort.

The package is in layers (docs/architecture.md): `core`, `io`, `models`, `analysis`,
`disclosure`, `publish`, `workflow`. The module names of the flat layout before them still
import, or say where they went (`cohort._moved`)."""

from cohort import _moved

__version__ = "0.1.0"

_moved.install()
