"""The module names of the flat layout, before the layers (docs/architecture.md): a module that
moved whole is still importable by its old name, with a DeprecationWarning naming its new place;
a module that was split stops with a message naming where each part went. A meta path finder
(the import system's documented hook) is used so that nothing is imported until asked for."""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import warnings

MOVED = {
    **{
        f"cohort.{m}": f"cohort.core.{m}"
        for m in ("errors", "frames", "distributions", "settings", "config", "labels")
    },  # fmt: skip
    **{
        f"cohort.{m}": f"cohort.io.{m}"
        for m in ("contract", "privacy", "importers", "scaffold", "outputs")
    },  # fmt: skip
    **{f"cohort.{m}": f"cohort.models.{m}" for m in ("individual_slopes", "meta_analysis", "lmm")},
    **{
        f"cohort.{m}": f"cohort.analysis.{m}"
        for m in (
            "derivations",
            "tables",
            "interventions",
            "outcomes",
            "responders",
            "predictors",
            "missing_data",
            "tipping",
            "groups",
            "pooling",
        )
    },  # fmt: skip
    **{f"cohort.{m}": f"cohort.publish.{m}" for m in ("summary", "publication", "pooling_figures")},
    **{
        f"cohort.{m}": f"cohort.workflow.{m}"
        for m in ("stages", "provenance", "runlog", "cli", "benchmark", "lint", "config_docs")
    },
}
SPLIT = {
    "cohort.cleaning": "cohort.io.reading (files), cohort.io.parsing (columns), "
    "cohort.io.cleaning_log and cohort.io.cleaning",
    "cohort.synthetic": "cohort.io.synthetic and cohort.io.synthetic_faults",
    "cohort.regression": "cohort.models.design, cohort.models.mixed, cohort.models.nested and "
    "cohort.models.logistic",
    "cohort.significance": "cohort.analysis.significance (thresholds), "
    "cohort.analysis.significance_rates and cohort.analysis.roc",
    "cohort.imputation": "cohort.analysis.imputation (MICE, Rubin's rules) and "
    "cohort.analysis.imputed_sets",
    "cohort.figures": "cohort.publish.figures, cohort.publish.outcome_figures and "
    "cohort.publish.response_figures",
}


class MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds `cohort.<old name>` and hands out the module at its new place."""

    def find_spec(self, fullname, path, target=None):  # noqa: ANN001 (the import system's API)
        old = next((name for name in (*MOVED, *SPLIT) if fullname == name or fullname.startswith(name + ".")), None)  # fmt: skip
        if old is None:
            return None
        if old in SPLIT:
            raise ModuleNotFoundError(
                f"{old} was split when the package took its layers: see {SPLIT[old]} "
                "(docs/architecture.md)",
                name=fullname,
            )
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec):  # noqa: ANN001
        old = next(name for name in MOVED if spec.name == name or spec.name.startswith(name + "."))
        new = MOVED[old] + spec.name[len(old) :]
        warnings.warn(f"{spec.name} is now {new}", DeprecationWarning, stacklevel=2)
        return importlib.import_module(new)

    def exec_module(self, module) -> None:  # noqa: ANN001
        """The module was run at its new place."""


def install() -> None:
    """Put the finder first, before the path finder, so that an old and a new name give one
    module object, not two."""
    if not any(isinstance(finder, MovedModules) for finder in sys.meta_path):
        sys.meta_path.insert(0, MovedModules())
