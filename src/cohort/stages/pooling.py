"""Rule site_bundle (a site's aggregates for pooling) and `python -m cohort pool` (the
coordinator's pooling of several sites' bundles): see cohort.pooling."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

from cohort.outputs import read_csv, table_notes, write_csv
from cohort.pooling import (
    check_compatible,
    compatibility,
    meta_analyses,
    pooled_aggregates,
    pooled_responders,
    site_bundle,
    site_comparison,
    site_estimates,
)

log = logging.getLogger(__name__)


def _sha256_json(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def site_bundle_stage(
    aggregates_path: str,
    responders_path: str,
    contract_path: str,
    settings: dict[str, Any],
    out: str,
    lmm_path: str | None = None,
) -> None:
    """Rule `site_bundle`: the published aggregates and responder breakdown with what a pooling
    must share (cohort.pooling.compatibility), as one JSON file."""
    shared = compatibility(
        hashlib.sha256(Path(contract_path).read_bytes()).hexdigest(),
        [o["name"] for o in settings["occasions"]],
        settings["outcomes"],
        settings.get("responders", {}).get("could_not_improve", "exclude"),
    )
    bundle = site_bundle(
        settings["study"]["name"], shared, _sha256_json(settings),
        read_csv(aggregates_path), read_csv(responders_path),
        read_csv(lmm_path) if lmm_path else None,
    )  # fmt: skip
    Path(out).write_text(json.dumps(bundle, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    log.info("wrote %s: %d aggregates, %d responder rows", out, len(bundle["aggregates"]), len(bundle["responders"]))  # fmt: skip


BUNDLE_KEYS = ("format", "site", "compatibility", "aggregates", "responders")


def read_bundle(path: str) -> dict[str, Any]:
    """One site's bundle, or a ValueError naming the file and what is wrong with it."""
    try:
        bundle = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path}: not a readable site bundle ({error})") from None
    missing = [k for k in BUNDLE_KEYS if not isinstance(bundle, dict) or k not in bundle]
    if missing:
        raise ValueError(f"{path}: not a site bundle: no {', '.join(missing)}")
    return bundle


def pool_stage(bundle_paths: list[str], out_dir: str, level: float = 0.95) -> dict[str, Path]:
    """`python -m cohort pool`: the sites' bundles, checked to agree, pooled into four tables
    and two figures in `out_dir`."""
    from cohort import figures, pooling_figures  # matplotlib: only when drawing

    bundles = [read_bundle(p) for p in bundle_paths]
    check_compatible(bundles)
    sites = ", ".join(b["site"] for b in bundles)
    out = Path(out_dir)
    (out / "tables").mkdir(parents=True, exist_ok=True)
    (out / "figures").mkdir(parents=True, exist_ok=True)
    aggregates = pooled_aggregates(bundles)
    responders = pooled_responders(bundles, level)
    estimates = site_estimates(bundles)
    meta = meta_analyses(estimates, level)
    comparison = site_comparison(bundles, responders)
    hidden = "[site] = not pooled because a site's cell is hidden by its disclosure control"
    paths = {
        "pooled_outcomes": out / "tables" / "pooled_outcomes.csv",
        "pooled_responders": out / "tables" / "pooled_responders.csv",
        "meta_analysis": out / "tables" / "meta_analysis.csv",
        "site_comparison": out / "tables" / "site_comparison.csv",
        "forest": out / "figures" / "forest.png",
        "funnel": out / "figures" / "funnel.png",
    }
    write_csv(aggregates, paths["pooled_outcomes"], table_notes(False, f"Sites: {sites}. n, mean and SD of each outcome (level) and of its change from the start (change) over the sites, from their exact sums; {hidden}."))  # fmt: skip
    write_csv(responders, paths["pooled_responders"], table_notes(False, f"Sites: {sites}. The responder breakdown among the available cases, each count the sum of the sites' published counts; {hidden}; {level:.0%} CI: Wilson score (Clopper-Pearson exact at 0 or n of n)."))  # fmt: skip
    write_csv(meta, paths["meta_analysis"], table_notes(False, f"Sites: {sites}. Two-stage meta-analysis of each site's mean change (variance SD^2 / n), log odds of responding (variance 1/r + 1/(n - r)) and mixed-model change from start (variance SE^2; only where every site's model has the same terms): random effects (REML tau^2, Hartung-Knapp {level:.0%} CI and prediction interval, t with k - 1 df), fixed effect beside it; I^2 and H^2 as metafor; sites whose estimate is not published are left out and named."))  # fmt: skip
    write_csv(comparison, paths["site_comparison"], table_notes(False, f"Sites: {sites}. Each site's responder rate against the pooled rate's exact binomial 95% and 99.8% limits at its n (funnel plot)."))  # fmt: skip
    figures.save_figure(pooling_figures.forest_plot(estimates, meta), paths["forest"])
    figures.save_figure(pooling_figures.funnel_plot(comparison), paths["funnel"])
    return paths
