"""Several clinics, one analysis, from files that have passed output checking: each site's
bundle of aggregates and the coordinator's pooling of them.

A site's aggregates (per outcome and occasion: n, the sum and the sum of squares of the values,
and of the changes from the start) are a published table like any other (`site_aggregates.csv`,
protected by rule publish under the same pattern as outcomes.csv, whose n they share), written
in full precision beside the readable figures (`float.hex`: exact). Its bundle
(`site_bundle.json`) holds those aggregates and the published responder breakdown with what the
pooling must agree on: the hash of the contract's content, the occasions, each outcome's
definition and MCID rule (as it classifies), the handling of could-not-improve.

Pooling is exact where every site published the cell: counts add up, means and SDs come from
the pooled sums. A pooled cell is hidden wherever one site's is, so that every published pooled
number is a function of published site numbers and nothing a site hid can be recovered from
the pooled tables and the other bundles (the same holds for the meta-analysis and the funnel
plot, drawn from published site estimates only). Between sites: the two-stage meta-analysis of
cohort.models.meta_analysis, and each site's responder rate against exact binomial funnel limits.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from cohort.analysis.responders import rate_interval
from cohort.analysis.tables import dominance_shares
from cohort.core.frames import frame
from cohort.core.settings import McidRule, Outcome
from cohort.models.lmm import COVARIANCE_TERM
from cohort.models.meta_analysis import meta_analysis

BUNDLE_FORMAT = "cohort-site-bundle/1"
HIDDEN_AT_SITE = "[site]"  # a pooled cell hidden because a site's contribution is hidden
AGGREGATE_COLUMNS = (
    "section", "outcome", "occasion", "N", "n", "sum", "sum_squares", "sum_hex",
    "sum_squares_hex", "dominance_top1_share", "dominance_top2_share", "dominance_negative",
)  # fmt: skip
AVAILABLE = "available cases"  # the responder breakdown a bundle carries (responders.csv)
BREAKDOWN = ("responders", "non_responders", "could_not_improve", "missing", "n", "N")
SUBGROUP_COLUMNS = ("subgroup", "level", "outcome", "occasion", "responders", "n")


def site_aggregates(
    patients: pd.DataFrame, outcomes: Mapping[str, Outcome], occasions: list[str]
) -> pd.DataFrame:
    """Per outcome: n, sum and sum of squares of the values at each occasion (section level)
    and of the change from the start among the patients measured at both (section change),
    with the dominance evidence of each sum (cohort.analysis.tables.dominance_shares, not published)."""
    rows = []
    for name, outcome in outcomes.items():
        start = patients[outcome.column_at(occasions[0])].astype(float)
        for section, occasion_list in (("level", occasions), ("change", occasions[1:])):
            for occasion in occasion_list:
                value = patients[outcome.column_at(occasion)].astype(float)
                values = (value - start if section == "change" else value).dropna().to_numpy()
                total, squares = float(values.sum()), float((values**2).sum())
                rows.append(
                    {
                        "section": section, "outcome": name, "occasion": occasion,
                        "N": len(patients), "n": len(values), "sum": total,
                        "sum_squares": squares, "sum_hex": total.hex(),
                        "sum_squares_hex": squares.hex(), **dominance_shares(values),
                    }
                )  # fmt: skip
    return frame(rows, AGGREGATE_COLUMNS)


# What makes two MCID rules the same rule; an outcome's `reference` and `assumption` say where
# the rule comes from, and two sites may word them differently.
MCID_RULE_KEYS = ("absolute", "percent", "combine", "strict")


def contract_sha256(contract: Mapping[str, Any]) -> str:
    """The hash of a data contract's content (its YAML parsed, as canonical JSON): two sites'
    copies that differ only in comments or layout are the same contract."""
    canonical = json.dumps(contract, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _rule_of(mcid: McidRule) -> dict[str, Any]:
    """An MCID rule as what it classifies by (defaults filled in: an omitted `strict` is false)."""
    return {k: getattr(mcid, k) for k in MCID_RULE_KEYS}


def compatibility(
    contract_sha256: str,
    occasions: list[str],
    outcomes: Mapping[str, Mapping[str, Any]],
    could_not_improve: str,
) -> dict[str, Any]:
    """What every bundle of one pooling must share: the contract's content, the occasions, each
    outcome's definition (source, range, direction, the MCID rule: threshold, combination and
    strictness, not its reference's wording) and the handling of could-not-improve."""
    return {
        "contract_sha256": contract_sha256,
        "occasions": list(occasions),
        "outcomes": {
            name: {
                **{k: spec.get(k) for k in ("source", "range", "better")},
                "mcid": _rule_of(McidRule.from_config(spec["mcid"])),
            }
            for name, spec in outcomes.items()
        },
        "could_not_improve": could_not_improve,
    }


def site_bundle(
    site: str,
    shared: dict[str, Any],
    config_sha256: str,
    aggregates: pd.DataFrame,
    responders: pd.DataFrame,
    lmm: pd.DataFrame | None = None,
    subgroups: pd.DataFrame | None = None,
) -> dict[str, Any]:
    """One site's bundle from its published tables (markers kept as published): with the mixed
    model's published change from the start per occasion (`lmm.csv`'s occasion terms, with SE,
    df and the model's terms, so that only like models are pooled) and each subgroup level's
    responder breakdown (responder_subgroups.csv, the strata of a case-mix adjustment)."""

    def records(table: pd.DataFrame) -> list[dict[str, Any]]:
        return [
            {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()}
            for r in table.to_dict("records")
        ]

    available = responders[responders["denominator"] == AVAILABLE]
    return {
        "format": BUNDLE_FORMAT,
        "site": site,
        "compatibility": shared,
        "config_sha256": config_sha256,
        "aggregates": records(aggregates[[c for c in aggregates.columns if not c.startswith("dominance")]]),
        "responders": records(available[["outcome", "occasion", "rule", *BREAKDOWN]]),
        "models": _model_records(lmm, [o for o in shared["occasions"][1:]]) if lmm is not None else [],
        "subgroups": records(subgroups[subgroups["denominator"] == AVAILABLE][list(SUBGROUP_COLUMNS)]) if subgroups is not None else [],
    }  # fmt: skip


def _cell(value: Any) -> Any:
    """A published cell as JSON holds it: a number as a float, a marker as its text."""
    if isinstance(value, str):
        return value
    return None if pd.isna(value) else float(value)


def _model_records(lmm: pd.DataFrame, follow_ups: list[str]) -> list[dict[str, Any]]:
    """Per outcome and follow-up, the mixed model's change from the start (its occasion term)
    with SE, df, patients, the model's fixed terms and its covariance with the other
    follow-ups' terms (lmm.csv's `covariance: a, b` rows)."""
    out = []
    for outcome, model in lmm.groupby("outcome", sort=False):
        named = [t if isinstance(t, str) else "" for t in model["term"]]  # estimated means: none
        terms = sorted(t for t in named if t and not t.startswith(("variance", COVARIANCE_TERM)))
        covariance = {
            tuple(t.removeprefix(COVARIANCE_TERM).split(", ")): _cell(v)
            for t, v in zip(named, model.get("estimate", pd.Series(index=model.index)), strict=True)
            if t.startswith(COVARIANCE_TERM)
        }
        for occasion in follow_ups:
            row = model[[t.endswith(f"[T.{occasion}]") and "occasion" in t for t in named]]
            if row.empty:
                continue
            r = row.iloc[0]
            with_others = {b if a == occasion else a: v for (a, b), v in covariance.items() if occasion in (a, b)}  # fmt: skip
            out.append({"outcome": outcome, "occasion": occasion, "estimate": _cell(r["estimate"]),
                        "se": _cell(r["se"]), "df": _cell(r["df"]), "patients": _cell(r["patients"]),
                        "terms": terms, "covariance": with_others})  # fmt: skip
    return out


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out |= _flatten(v, f"{prefix}.{k}" if prefix else str(k))
        return out
    return {prefix: value}


def check_compatible(bundles: list[dict[str, Any]]) -> None:
    """Refuse bundles of another format, or that differ in what they must share: ValueError
    naming both sites and the first key that differs, with both values."""
    if len(bundles) < 2:
        raise ValueError("pooling needs the bundles of two or more sites")
    sites = [b.get("site") for b in bundles]
    if len(set(sites)) < len(sites):
        raise ValueError(f"two bundles of the same site: {sites}")
    first = bundles[0]
    reference = _flatten(first["compatibility"])
    for bundle in bundles:
        if bundle.get("format") != BUNDLE_FORMAT:
            raise ValueError(f"site {bundle.get('site')}: not a {BUNDLE_FORMAT} bundle")
        theirs = _flatten(bundle["compatibility"])
        for key in sorted(set(reference) | set(theirs)):
            if reference.get(key) != theirs.get(key):
                raise ValueError(
                    f"site {bundle['site']} differs from site {first['site']} in {key}: "
                    f"{theirs.get(key)!r} vs {reference.get(key)!r}; bundles pool only from the "
                    "same contract, occasions, outcome definitions and MCID rules"
                )


def _number(value: Any) -> float:
    """A published value, NaN where a marker stands."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _exact(record: Mapping[str, Any], column: str) -> float:
    """The full-precision sum of an aggregates record (hex), NaN where hidden."""
    value = record.get(f"{column}_hex")
    try:
        return float.fromhex(value) if isinstance(value, str) else math.nan
    except ValueError:  # a marker
        return math.nan


def pooled_aggregates(bundles: list[dict[str, Any]]) -> pd.DataFrame:
    """n, mean and SD of each outcome per occasion (and of its change) over the sites, from
    their sums: exact where every site published the cell, hidden ([site]) where one did not."""
    rows = []
    keys = [(r["section"], r["outcome"], r["occasion"]) for r in bundles[0]["aggregates"]]
    for section, outcome, occasion in keys:
        parts = []
        for b in bundles:
            r = next(
                r for r in b["aggregates"]
                if (r["section"], r["outcome"], r["occasion"]) == (section, outcome, occasion)
            )  # fmt: skip
            parts.append((b["site"], _number(r["N"]), _number(r["n"]), _exact(r, "sum"), _exact(r, "sum_squares")))  # fmt: skip
        base = {"section": section, "outcome": outcome, "occasion": occasion,
                "sites": len(bundles), "N": sum(p[1] for p in parts)}  # fmt: skip
        hidden = [site for site, _, n, s, ss in parts if not all(map(math.isfinite, (n, s, ss)))]
        if hidden:
            rows.append({**base, "n": HIDDEN_AT_SITE, "mean": HIDDEN_AT_SITE, "sd": HIDDEN_AT_SITE,
                         "method": f"not pooled: hidden at site {', '.join(hidden)}"})  # fmt: skip
            continue
        n = sum(p[2] for p in parts)
        total, squares = sum(p[3] for p in parts), sum(p[4] for p in parts)
        sd = math.sqrt(max(squares - total**2 / n, 0.0) / (n - 1)) if n > 1 else math.nan
        rows.append({**base, "n": int(n), "mean": total / n if n else math.nan, "sd": sd,
                     "method": "exact: the sites' sums pooled"})  # fmt: skip
    columns = ("section", "outcome", "occasion", "sites", "N", "n", "mean", "sd", "method")
    return frame(rows, columns)


def _site_responders(bundle: dict[str, Any], outcome: str, occasion: str) -> dict[str, float]:
    r = next(
        r for r in bundle["responders"] if (r["outcome"], r["occasion"]) == (outcome, occasion)
    )
    return {k: _number(r[k]) for k in BREAKDOWN} | {"rule": r["rule"]}


def pooled_responders(bundles: list[dict[str, Any]], level: float) -> pd.DataFrame:
    """The responder breakdown over the sites (available cases), each count exact where every
    site published it, with the rate and its CI (cohort.analysis.responders.rate_interval)."""
    rows = []
    for r in bundles[0]["responders"]:
        outcome, occasion = r["outcome"], r["occasion"]
        parts = {b["site"]: _site_responders(b, outcome, occasion) for b in bundles}
        row: dict[str, Any] = {"outcome": outcome, "occasion": occasion, "rule": r["rule"],
                               "sites": len(bundles)}  # fmt: skip
        hidden_sites = set()
        for k in BREAKDOWN:
            values = {site: p[k] for site, p in parts.items()}
            missing = [site for site, v in values.items() if not math.isfinite(v)]
            hidden_sites.update(missing)
            row[k] = HIDDEN_AT_SITE if missing else int(sum(values.values()))
        if isinstance(row["responders"], int) and isinstance(row["n"], int) and row["n"] > 0:
            low, high, method = rate_interval(row["responders"], row["n"], level)
            row |= {"pct": 100 * row["responders"] / row["n"], "ci_low_pct": 100 * low,
                    "ci_high_pct": 100 * high, "method": f"exact sum over sites; {method}"}  # fmt: skip
        else:
            row["method"] = "rate not pooled: hidden at site " + ", ".join(sorted(hidden_sites))
        if hidden_sites and "rate not pooled" not in row["method"]:
            row["method"] += f"; counts hidden at site {', '.join(sorted(hidden_sites))}"
        rows.append(row)
    columns = ("outcome", "occasion", "rule", "sites", *BREAKDOWN, "pct", "ci_low_pct",
               "ci_high_pct", "method")  # fmt: skip
    return frame(rows, columns)


def site_estimates(bundles: list[dict[str, Any]]) -> pd.DataFrame:
    """Each site's estimates for the meta-analysis, from its published cells only: the mean
    change from the start (variance SD² / n) and the log odds of responding among the available
    cases (variance 1/r + 1/(n - r)); NaN, with the reason, where not published or 0 or n of n."""
    rows = []
    for b in bundles:
        for r in b["aggregates"]:
            if r["section"] != "change":
                continue
            n, s, ss = _number(r["n"]), _exact(r, "sum"), _exact(r, "sum_squares")
            base = {"estimand": "mean change", "site": b["site"], "outcome": r["outcome"],
                    "occasion": r["occasion"], "n": n}  # fmt: skip
            if not all(map(math.isfinite, (n, s, ss))) or n < 2:
                rows.append({**base, "estimate": math.nan, "variance": math.nan, "reason": "not published at the site"})  # fmt: skip
                continue
            var = (ss - s**2 / n) / (n - 1)
            rows.append({**base, "estimate": s / n, "variance": var / n, "reason": ""})
        for r in b["responders"]:
            k, n = _number(r["responders"]), _number(r["n"])
            base = {"estimand": "log odds of responding", "site": b["site"], "outcome": r["outcome"],
                    "occasion": r["occasion"], "n": n}  # fmt: skip
            if not (math.isfinite(k) and math.isfinite(n)):
                rows.append({**base, "estimate": math.nan, "variance": math.nan, "reason": "not published at the site"})  # fmt: skip
            elif k in (0, n):
                rows.append({**base, "estimate": math.nan, "variance": math.nan, "reason": f"{k:.0f} of {n:.0f}: no log odds"})  # fmt: skip
            else:
                rows.append({**base, "estimate": math.log(k / (n - k)), "variance": 1 / k + 1 / (n - k), "reason": ""})  # fmt: skip
    rows += _model_estimates(bundles)
    return frame(rows, ("estimand", "site", "outcome", "occasion", "n", "estimate", "variance", "reason"))  # fmt: skip


MODEL_ESTIMAND = "mixed-model change from start"
BETWEEN_ESTIMAND = "mixed-model change between follow-ups"


def _model_estimates(bundles: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The sites' mixed-model changes from the start (variance SE²) and between consecutive
    follow-ups (b - a, variance SE_a² + SE_b² - 2 cov), where published and where every site's
    model has the same terms (else adjusted estimates of different models)."""
    rows = []
    keys = {(m["outcome"], m["occasion"]) for b in bundles for m in b.get("models", [])}
    for outcome, occasion in sorted(keys):
        found = {b["site"]: _find_model(b, outcome, occasion) for b in bundles}
        terms = {tuple(m["terms"]) for m in found.values() if m is not None}
        for site, m in found.items():
            base = {"estimand": MODEL_ESTIMAND, "site": site, "outcome": outcome, "occasion": occasion}  # fmt: skip
            se = _number(m["se"]) if m else math.nan
            estimate = _number(m["estimate"]) if m else math.nan
            reason = _model_reason(len(terms), estimate, se**2)
            rows.append({**base, "n": _number(m["patients"]) if m else math.nan,
                         "estimate": estimate if not reason else math.nan,
                         "variance": se**2 if not reason else math.nan, "reason": reason})  # fmt: skip
    for outcome in dict.fromkeys(o for o, _ in sorted(keys)):
        follow_ups = bundles[0]["compatibility"]["occasions"][1:]
        for a, b in zip(follow_ups, follow_ups[1:], strict=False):
            found = {s["site"]: (_find_model(s, outcome, a), _find_model(s, outcome, b)) for s in bundles}  # fmt: skip
            terms = {tuple(m["terms"]) for pair in found.values() for m in pair if m is not None}
            for site, (ma, mb) in found.items():
                estimate = variance = math.nan
                if ma is not None and mb is not None:
                    estimate = _number(mb["estimate"]) - _number(ma["estimate"])
                    cov = _number(ma.get("covariance", {}).get(b))
                    variance = _number(ma["se"]) ** 2 + _number(mb["se"]) ** 2 - 2 * cov
                reason = _model_reason(len(terms), estimate, variance)
                rows.append({"estimand": BETWEEN_ESTIMAND, "site": site, "outcome": outcome,
                             "occasion": f"{a} to {b}", "n": _number(ma["patients"]) if ma else math.nan,
                             "estimate": estimate if not reason else math.nan,
                             "variance": variance if not reason else math.nan, "reason": reason})  # fmt: skip
    return rows


def _find_model(bundle: dict[str, Any], outcome: str, occasion: str) -> dict[str, Any] | None:
    return next((m for m in bundle.get("models", []) if (m["outcome"], m["occasion"]) == (outcome, occasion)), None)  # fmt: skip


def _model_reason(kinds_of_terms: int, estimate: float, variance: float) -> str:
    """Why a site's model estimate is not pooled ('' where it is)."""
    if kinds_of_terms > 1:
        return "the sites' models have different terms"
    if not (math.isfinite(estimate) and math.isfinite(variance)) or variance <= 0:
        return "not published at the site"
    return ""


META_COLUMNS = (
    "estimand", "outcome", "occasion", "k", "sites_left_out", "estimate", "se", "ci_low",
    "ci_high", "p_value", "tau2", "i2", "h2", "q", "q_p", "pi_low", "pi_high", "fe_estimate",
    "fe_se", "fe_ci_low", "fe_ci_high", "method",
)  # fmt: skip


def meta_analyses(estimates: pd.DataFrame, level: float) -> pd.DataFrame:
    """The two-stage meta-analysis of each estimand, outcome and occasion over the sites that
    published it (the others named); a row saying why where fewer than two did."""
    rows = []
    for (estimand, outcome, occasion), group in estimates.groupby(["estimand", "outcome", "occasion"], sort=False):  # fmt: skip
        usable = group[np.isfinite(group["estimate"].astype(float))]
        left = "; ".join(f"{r.site} ({r.reason})" for r in group.itertuples() if r.reason)
        base = {"estimand": estimand, "outcome": outcome, "occasion": occasion,
                "k": len(usable), "sites_left_out": left}  # fmt: skip
        if len(usable) < 2:
            rows.append({**base, "method": "not pooled: fewer than two sites publish it"})
            continue
        found = meta_analysis(usable["estimate"].to_numpy(float), usable["variance"].to_numpy(float), level)  # fmt: skip
        rows.append(
            {
                **base,
                **{c: getattr(found, c) for c in META_COLUMNS if hasattr(found, c) and c != "k"},
                "method": "random effects: REML tau², Hartung-Knapp CI (t, k - 1 df) and prediction "
                "interval; fixed effect: inverse variance, z CI (as metafor's rma)",
            }  # fmt: skip
        )
    return frame(rows, META_COLUMNS)


def funnel_limits(p: float, n: np.ndarray, coverage: float) -> tuple[np.ndarray, np.ndarray]:
    """Exact binomial control limits of a rate around the pooled rate p at denominators n
    (Spiegelhalter, Stat Med 2005;24:1185, without interpolation)."""
    tail = (1 - coverage) / 2
    n = np.asarray(n, dtype=float)
    return stats.binom.ppf(tail, n, p) / n, stats.binom.ppf(1 - tail, n, p) / n


def site_comparison(bundles: list[dict[str, Any]], pooled: pd.DataFrame) -> pd.DataFrame:
    """Each site's responder rate against the pooled rate's exact 95% and 99.8% funnel limits."""
    rows = []
    for _, total in pooled.iterrows():
        p = _number(total.get("pct")) / 100
        for b in bundles:
            r = _site_responders(b, total["outcome"], total["occasion"])
            k, n = r["responders"], r["n"]
            row = {"outcome": total["outcome"], "occasion": total["occasion"], "site": b["site"],
                   "responders": k, "n": n}  # fmt: skip
            if not (math.isfinite(k) and math.isfinite(n) and math.isfinite(p)) or n == 0:
                rows.append({**row, "position": "not compared: a count or the pooled rate is not published"})  # fmt: skip
                continue
            limits = {c: funnel_limits(p, np.array([n]), c) for c in (0.95, 0.998)}
            rate = k / n
            lo95, hi95 = limits[0.95][0][0], limits[0.95][1][0]
            lo998, hi998 = limits[0.998][0][0], limits[0.998][1][0]
            position = _position(rate, {0.95: (lo95, hi95), 0.998: (lo998, hi998)})
            rows.append({**row, "pct": 100 * rate, "pooled_pct": 100 * p,
                         "limit95_low_pct": 100 * lo95, "limit95_high_pct": 100 * hi95,
                         "limit998_low_pct": 100 * lo998, "limit998_high_pct": 100 * hi998,
                         "position": position})  # fmt: skip
    columns = ("outcome", "occasion", "site", "responders", "n", "pct", "pooled_pct",
               "limit95_low_pct", "limit95_high_pct", "limit998_low_pct", "limit998_high_pct",
               "position")  # fmt: skip
    return frame(rows, columns).reindex(columns=list(columns))  # rows not compared lack some


def _sum_of_binomials(n: np.ndarray, p: np.ndarray) -> np.ndarray:
    """The exact distribution of a sum of independent binomials (n_l, p_l): their pmfs
    convolved (FFT for long ones; rounding noise below 1e-12 clipped)."""
    from scipy.signal import fftconvolve

    pmf = np.ones(1)
    for size, prob in zip(n.astype(int), p, strict=True):
        part = stats.binom.pmf(np.arange(size + 1), size, prob)
        pmf = np.convolve(pmf, part) if len(pmf) * len(part) < 4e6 else fftconvolve(pmf, part)
    pmf = np.clip(pmf, 0.0, None)
    return pmf / pmf.sum()


def _quantile(pmf: np.ndarray, q: float) -> int:
    """The smallest k with P(X <= k) >= q (as scipy's ppf), with a 1e-12 allowance for the
    rounding of the cumulative sum."""
    return int(np.searchsorted(np.cumsum(pmf), q - 1e-12))


CASEMIX_COLUMNS = (
    "outcome", "occasion", "adjusted_by", "site", "responders", "n", "expected", "ratio",
    "pct", "adjusted_pct", "pooled_pct", "limit95_low_pct", "limit95_high_pct",
    "limit998_low_pct", "limit998_high_pct", "position", "method",
)  # fmt: skip


def casemix_comparison(
    bundles: list[dict[str, Any]], pooled: pd.DataFrame, by: str
) -> pd.DataFrame:
    """Each site's responders against those expected from its case mix (indirect
    standardisation by the levels of subgroup `by`: E = sum of the site's n per level times the
    pooled rate of the level), with exact limits from the sum of the levels' binomials; the
    adjusted rate is the pooled rate times O/E. Not compared where a level's count is hidden
    at any site (the pooled level rates need every site's)."""
    rows = []
    for _, total in pooled.iterrows():
        outcome, occasion = total["outcome"], total["occasion"]
        p_all = _number(total.get("pct")) / 100
        strata = {b["site"]: [r for r in b.get("subgroups", [])
                              if (r["subgroup"], r["outcome"], r["occasion"]) == (by, outcome, occasion)]
                  for b in bundles}  # fmt: skip
        base = {"outcome": outcome, "occasion": occasion, "adjusted_by": by}
        levels = sorted({r["level"] for rs in strata.values() for r in rs})
        table = {(s, r["level"]): (_number(r["responders"]), _number(r["n"])) for s, rs in strata.items() for r in rs}  # fmt: skip
        absent = [s for s, rs in strata.items() if not rs]
        hidden = sorted({s for (s, _), (k, n) in table.items() if not (math.isfinite(k) and math.isfinite(n))})  # fmt: skip
        reason = (
            f"not adjusted: no breakdown by {by} in the bundle of site {', '.join(absent)}" if absent
            else f"not adjusted: a level's count of {by} hidden at site {', '.join(hidden)}" if hidden
            else "not adjusted: the pooled rate is not published" if not math.isfinite(p_all)
            else ""
        )  # fmt: skip
        if reason:
            rows += [{**base, "site": b["site"], "position": reason} for b in bundles]
            continue
        n_level = {lv: sum(table.get((b["site"], lv), (0, 0))[1] for b in bundles) for lv in levels}
        rate = {lv: sum(table.get((b["site"], lv), (0, 0))[0] for b in bundles) / n_level[lv]
                for lv in levels if n_level[lv] > 0}  # fmt: skip
        for b in bundles:
            site = b["site"]
            parts = [(table[(site, lv)][1], rate[lv]) for lv in rate if (site, lv) in table]
            n_s = np.array([n for n, _ in parts])
            p_s = np.array([p for _, p in parts])
            observed = sum(table[(site, lv)][0] for lv in levels if (site, lv) in table)
            expected = float((n_s * p_s).sum())
            if expected <= 0:
                rows.append({**base, "site": site, "position": "not compared: no patient expected to respond"})  # fmt: skip
                continue
            pmf = _sum_of_binomials(n_s, p_s)
            scale = 100 * p_all / expected  # a count as the adjusted rate it implies
            limits = {c: (_quantile(pmf, (1 - c) / 2), _quantile(pmf, 1 - (1 - c) / 2)) for c in (0.95, 0.998)}  # fmt: skip
            position = _position(observed, limits)
            rows.append({**base, "site": site, "responders": observed, "n": float(n_s.sum()),
                         "expected": expected, "ratio": observed / expected,
                         "pct": 100 * observed / n_s.sum(), "adjusted_pct": scale * observed,
                         "pooled_pct": 100 * p_all,
                         "limit95_low_pct": scale * limits[0.95][0], "limit95_high_pct": scale * limits[0.95][1],
                         "limit998_low_pct": scale * limits[0.998][0], "limit998_high_pct": scale * limits[0.998][1],
                         "position": position,
                         "method": f"indirect standardisation by {by} ({len(rate)} levels); exact limits of "
                                   "the sum of the levels' binomials at the pooled level rates"})  # fmt: skip
    return frame(rows, CASEMIX_COLUMNS).reindex(
        columns=list(CASEMIX_COLUMNS)
    )  # rows not compared lack some


def _position(observed: float, limits: dict[float, tuple[float, float]]) -> str:
    """Where a count lies against its 95% and 99.8% limits."""
    (lo95, hi95), (lo998, hi998) = limits[0.95], limits[0.998]
    return (
        "above 99.8%" if observed > hi998 else "below 99.8%" if observed < lo998
        else "above 95%" if observed > hi95 else "below 95%" if observed < lo95 else "within 95%"
    )  # fmt: skip
