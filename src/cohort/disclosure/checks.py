"""Per-table checks after the pattern is applied, as ACRO does them: models too small to
publish, terms of small levels, Table 2's text, assessed vs lost, the threshold curve."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import pandas as pd

from cohort.disclosure.counts import _num
from cohort.disclosure.settings import MIN_RESIDUAL_DF, SECONDARY, SMALL_GROUP, Context


# --- Models: not published when too small (ACRO's rules) ----------------------------------------
def _suppress_models(
    out: pd.DataFrame,
    original: pd.DataFrame,
    by: list[str],
    reasons: Callable[[pd.DataFrame], str],
    estimates: Sequence[str],
) -> tuple[pd.DataFrame, int]:
    """Blank the estimates of every model (rows grouped by `by`) whose `reasons` are not empty,
    with the reason in column `disclosure`."""
    if original.empty:
        return out, 0
    out = out.copy()
    out["disclosure"] = ""
    hidden = 0
    for _, rows in original.groupby(by, sort=False, dropna=False):
        reason = reasons(rows)
        if not reason:
            continue
        hidden += 1
        for column in estimates:
            if column in out.columns:
                out[column] = out[column].astype(object)
                out.loc[rows.index, column] = SMALL_GROUP
        out.loc[rows.index, "disclosure"] = reason
    return out, hidden


def _small_levels(
    out: pd.DataFrame, original: pd.DataFrame, estimates: Sequence[str], min_cell: int
) -> tuple[pd.DataFrame, int]:
    """Terms comparing a level (or its reference) of fewer than min_cell patients: hidden."""
    if "level_n" not in original.columns:
        return out, 0
    small = pd.to_numeric(original["level_n"], errors="coerce") < min_cell
    small &= out["disclosure"].eq("") if "disclosure" in out.columns else True
    if not small.any():
        return out, 0
    out = out.copy()
    for column in [c for c in estimates if c in out.columns]:
        out[column] = out[column].astype(object)
        out.loc[small, column] = SMALL_GROUP
    out.loc[small, "disclosure"] = (
        f"not published: a level or its reference has fewer than {min_cell} patients"
    )
    out["level_n"] = out["level_n"].astype(object)
    out.loc[small, "level_n"] = f"<{min_cell}"
    return out, int(small.sum())


def _model_reasons(n: float, events: float | None, parameters: float, min_cell: int) -> str:
    reasons = []
    if not math.isfinite(n) or n < min_cell:
        reasons.append(f"fewer than {min_cell} patients")
    if (
        events is not None
        and math.isfinite(events)
        and (events < min_cell or n - events < min_cell)
    ):
        reasons.append(f"fewer than {min_cell} patients with or without the event")
    if math.isfinite(parameters) and math.isfinite(n) and n - parameters < MIN_RESIDUAL_DF:
        reasons.append(f"fewer than {MIN_RESIDUAL_DF} residual degrees of freedom")
    return "not published: " + "; ".join(reasons) if reasons else ""


PREDICTOR_ESTIMATES = (
    "log_or", "se", "odds_ratio", "ci_low", "ci_high", "p_value", "epv",
    "fmi", "lambda", "monte_carlo_se",
)  # fmt: skip


def _finish_predictors(out, original, settings, ctx):
    def reasons(rows: pd.DataFrame) -> str:
        first = rows.iloc[0]
        if first["analysis"] == "multiple imputation":
            return ""  # the complete-case model of the same outcome carries the check
        return _model_reasons(
            _num(first.get("N")),
            _num(first.get("events")),
            _num(first.get("parameters")),
            settings.min_cell,
        )

    out, models = _suppress_models(
        out, original, ["outcome", "occasion", "analysis"], reasons, PREDICTOR_ESTIMATES
    )
    out, terms = _small_levels(out, original, PREDICTOR_ESTIMATES, settings.min_cell)
    # What is not published of a complete-case model is not published of the pooled model of
    # the same outcome and occasion either (the same few events, the same small level).
    blocked = out[(out["analysis"] == "complete case") & (out["disclosure"] != "")]
    for _, b in blocked.iterrows():
        rows = (
            (out["outcome"] == b["outcome"])
            & (out["occasion"] == b["occasion"])
            & (out["analysis"] == "multiple imputation")
            & (
                out["term"] == b["term"]
                if b["disclosure"].startswith("not published: a level")
                else True
            )
        )
        for column in [c for c in PREDICTOR_ESTIMATES if c in out.columns]:
            out[column] = out[column].astype(object)
            out.loc[rows, column] = SMALL_GROUP
        out.loc[rows, "disclosure"] = "not published: as its complete-case model"
    return out, {"models not published": models, "terms of small levels not published": terms}


def _finish_lmm(out, original, settings, ctx):
    def reasons(rows: pd.DataFrame) -> str:
        fixed = rows[
            (rows.get("section", pd.Series("", index=rows.index)) != "estimated mean")
            & ~rows["term"].astype(str).str.startswith(("variance", "covariance"))
        ]  # the fixed effects: not the variance components nor the occasion terms' covariances
        first = rows.iloc[0]
        return _model_reasons(_num(first.get("patients")), None, math.nan, settings.min_cell) or (
            _model_reasons(_num(first.get("observations")), None, len(fixed) + 2, settings.min_cell)
        )

    estimates = ["estimate", "se", "ci_low", "ci_high", "p_value", "estimated_mean", "df"]
    out, models = _suppress_models(out, original, ["outcome"], reasons, estimates)
    out, terms = _small_levels(out, original, estimates, settings.min_cell)
    return out, {"models not published": models, "terms of small levels not published": terms}


def _finish_ancova(out, original, settings, ctx):
    def reasons(rows: pd.DataFrame) -> str:
        first = rows.iloc[0]
        if str(first.get("analysis", "ANCOVA")) != "ANCOVA":  # Welch: each group's pairs
            smallest = min(_num(first.get("n_group")), _num(first.get("n_reference")))
            return _model_reasons(smallest, None, math.nan, settings.min_cell)
        parameters = 2 + len(str(first.get("adjusted_for", "")).split(", ")) + len(rows)
        return _model_reasons(_num(first.get("N")), None, parameters, settings.min_cell)

    if "analysis" in original.columns:  # one ANCOVA per outcome and occasion; one Welch per row
        welch = original["analysis"].astype(str) != "ANCOVA"
        model = original["analysis"].astype(str).where(~welch, original["term"].astype(str))
        original = original.assign(model=model)
    else:
        original = original.assign(model="ANCOVA")
    out, models = _suppress_models(
        out,
        original,
        ["outcome", "occasion", "model"],
        reasons,
        ["difference", "se", "df", "ci_low", "ci_high", "p_value"],
    )
    return out, {"models not published": models}


def _finish_baseline(out, original, settings, ctx):
    """'n (%)' text of a level whose percentage is hidden (its valid n is): 'n ([c])'."""
    out = out.copy()
    markers = [SECONDARY, SMALL_GROUP, settings.primary]
    rows = (
        out["pct"].isin(markers)
        & ~out["count"].isin(markers)
        & ~out["value"].isin(markers)  # a statistic of a small group stays hidden
        & original["count"].notna()
    )
    out["value"] = out["value"].astype(object)
    out.loc[rows, "value"] = [
        f"{int(float(k))} ({p})"
        for k, p in zip(out.loc[rows, "count"], out.loc[rows, "pct"], strict=True)
    ]
    return out, {}


def _finish_missingness(out, original, settings, ctx):
    """Assessed vs lost: the means of two groups and of both (Table 2) give each other, so a
    group below min_cell hides the statistics of both groups; SMD and p go with any hidden share."""
    out = out.copy()
    hidden = 0
    rows = original["section"] != "missing"
    stats = ["completers", "lost", "smd", "p_value"]
    for column in stats:
        out[column] = out[column].astype(object)
    for _, group in original[rows].groupby(["occasion", "variable"], sort=False):
        small = (
            group[["completers_n", "lost_n"]].apply(pd.to_numeric, errors="coerce")
            < settings.min_cell
        ).any(axis=None)
        if small:
            out.loc[group.index, stats] = SMALL_GROUP
            hidden += len(group)
            continue
        shares_hidden = (
            out.loc[group.index, ["completers", "lost"]]
            .isin([SECONDARY, SMALL_GROUP, settings.primary])
            .any(axis=None)
        )
        if shares_hidden:
            out.loc[group.index, ["smd", "p_value"]] = SECONDARY
    return out, {"rows of groups below min_cell": hidden}


def _finish_sweep(out, original, settings, ctx):
    """Published only at thresholds where the count reaching is shown and each step from the
    previous published threshold carries at least min_cell patients (or none); the rest of the
    curve's points are merged into their neighbours (left out)."""
    keep = pd.Series(False, index=out.index)
    reaching = pd.to_numeric(out["reaching"], errors="coerce")
    for _, rows in out.groupby(["outcome", "occasion", "scale"], sort=False):
        previous = None
        for i in rows.sort_values("threshold", kind="stable").index:
            value = reaching[i]
            if not math.isfinite(value):
                continue
            step = None if previous is None else previous - value
            if (
                step is None
                or step >= settings.min_cell
                or (step == 0 and not settings.zeros_disclosive)
            ):
                keep[i] = True
                previous = value
    return out[keep].reset_index(drop=True), {
        "thresholds merged into neighbours": int((~keep).sum())
    }


def fold_could_not_improve(
    table: pd.DataFrame, ctx: Context
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Subgroup levels: where could-not-improve patients count as non-responders (the default
    population rule), each level's could-not-improve count is added to its non-responders and
    not printed apart. The rate is unchanged (same responders, same n); the split, mostly a few
    patients per level, would otherwise hide about one responder count or n per level and
    occasion to protect it (30 of the default study's protective suppressions)."""
    if ctx.handling == "exclude" or "could_not_improve" not in table.columns:
        return table, {}
    cni = pd.to_numeric(table["could_not_improve"], errors="coerce")
    out = table.assign(non_responders=pd.to_numeric(table["non_responders"]) + cni.fillna(0))
    out = out.drop(columns=["could_not_improve"])
    return out, {
        "rows whose non-responders include the could-not-improve (not printed apart)": len(out)
    }
