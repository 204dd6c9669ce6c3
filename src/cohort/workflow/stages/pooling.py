"""Rule site_bundle (a site's aggregates for pooling) and `python -m cohort pool` (the
coordinator's pooling of several sites' bundles): see cohort.analysis.pooling."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from cohort.analysis.pooling import (
    casemix_comparison,
    check_compatible,
    compatibility,
    contract_sha256,
    meta_analyses,
    pooled_aggregates,
    pooled_responders,
    site_bundle,
    site_comparison,
    site_estimates,
)
from cohort.core.config import read_yaml
from cohort.io.outputs import read_csv, table_notes, write_csv

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
    subgroups_path: str | None = None,
) -> None:
    """Rule `site_bundle`: the published aggregates and responder breakdown with what a pooling
    must share (cohort.analysis.pooling.compatibility), as one JSON file."""
    shared = compatibility(
        contract_sha256(read_yaml(contract_path)),
        [o["name"] for o in settings["occasions"]],
        settings["outcomes"],
        settings.get("responders", {}).get("could_not_improve", "exclude"),
    )
    bundle = site_bundle(
        settings["study"]["name"], shared, _sha256_json(settings),
        read_csv(aggregates_path), read_csv(responders_path),
        read_csv(lmm_path) if lmm_path else None,
        read_csv(subgroups_path) if subgroups_path else None,
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


@dataclass(frozen=True)
class PoolingSettings:
    """A pooling file's settings (config/studies/<name>.yaml, key `pooling`)."""

    name: str
    sites: dict[str, str]  # site name -> its site_bundle.json
    results: str
    level: float = 0.95
    case_mix: tuple[str, ...] = ()


def pooling_settings(config: Mapping[str, Any], source: str) -> PoolingSettings:
    """The `pooling` section of a pooling file, or a ValueError naming the file and the key."""
    raw = config.get("pooling")
    if not isinstance(raw, Mapping):
        raise ValueError(
            f"{source}: no `pooling` section (a pooling file names its sites' bundles)"
        )
    unknown = sorted(set(raw) - {"name", "sites", "results", "level", "case_mix"})
    if unknown:
        raise ValueError(f"{source}: pooling.{unknown[0]} is not a pooling key (name, sites, results, level, case_mix)")  # fmt: skip
    sites = raw.get("sites")
    if not isinstance(sites, Mapping) or len(sites) < 2 or not all(isinstance(v, str) for v in sites.values()):  # fmt: skip
        raise ValueError(f"{source}: pooling.sites must map two or more site names to their site_bundle.json")  # fmt: skip
    for key in ("name", "results"):
        if not isinstance(raw.get(key), str) or not raw[key]:
            raise ValueError(f"{source}: pooling.{key} must be given as text")
    level = raw.get("level", 0.95)
    if not isinstance(level, float) or not 0.5 <= level < 1:
        raise ValueError(f"{source}: pooling.level must be a number in [0.5, 1), not {level!r}")
    case_mix = raw.get("case_mix") or []
    if not isinstance(case_mix, list) or not all(isinstance(v, str) for v in case_mix):
        raise ValueError(f"{source}: pooling.case_mix must be a list of subgroup variables")
    return PoolingSettings(raw["name"], {str(k): v for k, v in sites.items()}, raw["results"], level, tuple(case_mix))  # fmt: skip


POOLED_TABLES = ("pooled_outcomes", "pooled_responders", "meta_analysis", "site_comparison")


def pooled_outputs(out_dir: str, case_mix: tuple[str, ...] = ()) -> dict[str, Path]:
    """The files a pooling writes in `out_dir`: four tables, two figures (and the case-mix
    adjusted comparison with its funnel plot), and the record of the bundles pooled."""
    out = Path(out_dir)
    paths = {name: out / "tables" / f"{name}.csv" for name in POOLED_TABLES}
    paths |= {"forest": out / "figures" / "forest.png", "funnel": out / "figures" / "funnel.png"}
    if case_mix:
        paths["site_comparison_adjusted"] = out / "tables" / "site_comparison_adjusted.csv"
        paths["funnel_adjusted"] = out / "figures" / "funnel_adjusted.png"
    return paths | {"record": out / "pooling.json"}


def pool_stage(
    bundle_paths: list[str],
    out_dir: str,
    level: float = 0.95,
    case_mix: tuple[str, ...] = (),
    expected_sites: list[str] | None = None,
) -> dict[str, Path]:
    """`python -m cohort pool` and rule pool: the sites' bundles, checked to agree (and to be
    the sites the pooling file names), pooled into tables and figures in `out_dir`, with a
    record of what was pooled (pooling.json: each bundle's sha256, config and contract hash)."""
    from cohort.publish import figures, pooling_figures  # matplotlib: only when drawing

    bundles = [read_bundle(p) for p in bundle_paths]
    if expected_sites is not None:
        for path, name, bundle in zip(bundle_paths, expected_sites, bundles, strict=True):
            if bundle["site"] != name:
                raise ValueError(f"{path}: the bundle of site {bundle['site']!r}, named {name!r} in the pooling file")  # fmt: skip
    check_compatible(bundles)
    sites = ", ".join(b["site"] for b in bundles)
    paths = pooled_outputs(out_dir, case_mix)
    for path in paths.values():
        path.parent.mkdir(parents=True, exist_ok=True)
    aggregates = pooled_aggregates(bundles)
    responders = pooled_responders(bundles, level)
    estimates = site_estimates(bundles)
    meta = meta_analyses(estimates, level)
    comparison = site_comparison(bundles, responders)
    hidden = "[site] = not pooled because a site's cell is hidden by its disclosure control"
    write_csv(aggregates, paths["pooled_outcomes"], table_notes(False, f"Sites: {sites}. n, mean and SD of each outcome (level) and of its change from the start (change) over the sites, from their exact sums; {hidden}."))  # fmt: skip
    write_csv(responders, paths["pooled_responders"], table_notes(False, f"Sites: {sites}. The responder breakdown among the available cases, each count the sum of the sites' published counts; {hidden}; {level:.0%} CI: Wilson score (Clopper-Pearson exact at 0 or n of n)."))  # fmt: skip
    write_csv(meta, paths["meta_analysis"], table_notes(False, f"Sites: {sites}. Two-stage meta-analysis of each site's mean change (variance SD^2 / n), log odds of responding (variance 1/r + 1/(n - r)) mixed-model change from start (variance SE^2) and between consecutive follow-ups (b - a, variance SE_a^2 + SE_b^2 - 2 cov; both only where every site's model has the same terms): random effects (REML tau^2, Hartung-Knapp {level:.0%} CI and prediction interval, t with k - 1 df), fixed effect beside it; I^2 and H^2 as metafor; sites whose estimate is not published are left out and named."))  # fmt: skip
    write_csv(comparison, paths["site_comparison"], table_notes(False, f"Sites: {sites}. Each site's responder rate against the pooled rate's exact binomial 95% and 99.8% limits at its n (funnel plot)."))  # fmt: skip
    figures.save_figure(pooling_figures.forest_plot(estimates, meta), paths["forest"])
    figures.save_figure(pooling_figures.funnel_plot(comparison), paths["funnel"])
    if case_mix:
        adjusted = pd.concat([casemix_comparison(bundles, responders, by) for by in case_mix], ignore_index=True)  # fmt: skip
        write_csv(adjusted, paths["site_comparison_adjusted"], table_notes(False, f"Sites: {sites}. Each site's responders (O) against those expected from its case mix (E: the site's available cases per level of the subgroup times the pooled rate of that level; indirect standardisation), adjusted rate = pooled rate x O/E, with exact 95% and 99.8% limits of the sum of the levels' binomials; not adjusted where a level's count is hidden at a site."))  # fmt: skip
        figures.save_figure(
            pooling_figures.adjusted_funnel_plot(adjusted), paths["funnel_adjusted"]
        )
    record = {
        "sites": [
            {"site": b["site"], "bundle": str(path), "sha256": hashlib.sha256(Path(path).read_bytes()).hexdigest(),
             "config_sha256": b.get("config_sha256")}
            for path, b in zip(bundle_paths, bundles, strict=True)
        ],
        "compatibility": bundles[0]["compatibility"],
        "level": level,
        "case_mix": list(case_mix),
        "outputs": sorted(str(p.relative_to(out_dir)) for k, p in paths.items() if k != "record"),
    }  # fmt: skip
    paths["record"].write_text(
        json.dumps(record, indent=1, sort_keys=True) + "\n", encoding="utf-8"
    )
    return paths
