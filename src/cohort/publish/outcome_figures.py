"""Figures of the outcomes over time, drawn from the published tables: trajectories, the change
from the start, the threshold sweep and the mixed model's estimated means.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from cohort.analysis.tables import quartiles  # noqa: E402
from cohort.core.settings import McidRule  # noqa: E402
from cohort.publish.figures import TWO_COLUMNS, _laid_out, _wrapped, count_text, placeholder


def _occasion_panels(
    data: pd.DataFrame,
    centre: str,
    low: str,
    high: str,
    n: str,
    occasion_labels: dict[str, str],
    ranges: dict[str, list[float]],
    ylabel: str,
) -> plt.Figure:
    """One panel per outcome: a point per occasion with an interval, on the scale's full range,
    with the n behind each point under its occasion."""
    outcomes = list(dict.fromkeys(data["outcome"]))
    if not outcomes:
        return placeholder("Nothing to draw: see the table and the rule log.")
    fig, axes = plt.subplots(1, len(outcomes), figsize=(TWO_COLUMNS, 2.6), squeeze=False)
    for ax, outcome in zip(axes[0], outcomes, strict=True):
        part = data[data["outcome"] == outcome].reset_index(drop=True)
        x = np.arange(len(part))
        ax.errorbar(
            x,
            part[centre],
            yerr=[part[centre] - part[low], part[high] - part[centre]],
            fmt="o-",
            color="#2b4c6f",
            capsize=4,
        )
        ax.set_xticks(
            x,
            [
                f"{_wrapped(occasion_labels[o])}\n(n = {count_text(k)})"
                for o, k in zip(part["occasion"], part[n], strict=True)
            ],
            fontsize=7,
        )
        ax.set_xlim(-0.4, len(part) - 0.6)
        ax.set_ylim(*ranges[outcome])
        ax.set_title(part["label"].iat[0], fontsize=8)
        ax.set_ylabel(ylabel)
        ax.spines[["top", "right"]].set_visible(False)
    return _laid_out(fig)


# trajectories and estimated_means take the same arguments on purpose: both draw a value with
# its interval per outcome and occasion, from the outcomes and lmm tables.
def trajectories(
    levels: pd.DataFrame,
    occasion_labels: dict[str, str],
    ranges: dict[str, list[float]],
) -> plt.Figure:
    """Median and interquartile range of each outcome at each occasion, n measured under each."""
    return _occasion_panels(
        levels, "median", "q1", "q3", "n", occasion_labels, ranges, "Median and IQR (scale units)"
    )


def change_distributions(
    changes: dict[tuple[str, str], np.ndarray],
    labels: dict[str, str],
    occasion_labels: dict[str, str],
    min_cell: int,
    quantiles: str = "type7",
) -> plt.Figure:
    """Distribution of the change from baseline per outcome and later occasion, zero marked: a
    box (quartiles by the tables' definition, cohort.analysis.tables.quartiles; whiskers to the last
    change within 1.5 IQR), no individual points (results/ holds aggregates only), and no box
    for fewer than `min_cell` patients (disclosure control). (MCID thresholds belong to the
    responders rule and its threshold-sweep figure.)"""
    outcomes = list(dict.fromkeys(o for o, _ in changes))
    fig, axes = plt.subplots(1, len(outcomes), figsize=(TWO_COLUMNS, 2.6), squeeze=False)
    for ax, outcome in zip(axes[0], outcomes, strict=True):
        keys = [k for k in changes if k[0] == outcome]
        shown = [len(changes[k]) >= min_cell for k in keys]
        stats = [
            _box_stats(changes[k], quantiles) if ok else _box_stats(np.array([]), quantiles)
            for k, ok in zip(keys, shown, strict=True)
        ]
        ax.bxp(stats, showfliers=False, widths=0.5)
        ax.axhline(0, color="black", linewidth=0.8)
        ax.set_xticks(
            range(1, len(keys) + 1),
            [
                f"{_wrapped(occasion_labels[o])}\n(n = {len(changes[(outcome, o)]) if ok else f'<{min_cell}'})"
                for (_, o), ok in zip(keys, shown, strict=True)
            ],
            fontsize=7,
        )
        ax.set_title(labels[outcome], fontsize=8)
        ax.set_ylabel("Change from start (scale units)")
        ax.spines[["top", "right"]].set_visible(False)
    return _laid_out(fig)


def _box_stats(values: np.ndarray, quantiles: str) -> dict[str, float]:
    """A box's statistics for Axes.bxp: the tables' quartiles, Tukey's whiskers (the last value
    within 1.5 IQR of the box); NaN (nothing drawn) for an empty group."""
    q = quartiles(values, quantiles)
    low_fence = q["q1"] - 1.5 * (q["q3"] - q["q1"])
    high_fence = q["q3"] + 1.5 * (q["q3"] - q["q1"])
    inside = values[(values >= low_fence) & (values <= high_fence)] if len(values) else values
    return {
        "med": q["median"],
        "q1": q["q1"],
        "q3": q["q3"],
        "whislo": float(inside.min()) if len(inside) else np.nan,
        "whishi": float(inside.max()) if len(inside) else np.nan,
        "fliers": [],
    }


SWEEP_SCALES = {
    "absolute": ("Threshold, scale units", "absolute"),
    "percent": ("Threshold, % of the start value", "percent"),
}


def threshold_sweep_figure(
    sweep: pd.DataFrame,
    labels: dict[str, str],
    occasion_labels: dict[str, str],
    mcids: dict[str, McidRule | None],
) -> plt.Figure:
    """Share of patients whose improvement reaches each threshold, per outcome (columns) on the
    absolute scale (with its SD units on a second axis) and the percent scale (rows), per
    follow-up occasion, with Wilson bands and the configured MCID marked on its scale."""
    scales = [scale for scale in SWEEP_SCALES if (sweep["scale"] == scale).any()]
    if sweep.empty or not scales:
        return placeholder(
            "No threshold can be published: each step carries too few patients (see the table)."
        )
    outcomes = list(dict.fromkeys(sweep["outcome"]))
    fig, axes = plt.subplots(
        len(scales), len(outcomes), figsize=(TWO_COLUMNS, 2.5 * len(scales)), squeeze=False
    )
    colours = ["#0072B2", "#E69F00", "#009E73", "#CC79A7"]  # Okabe-Ito
    for row, scale in enumerate(scales):
        data = sweep[sweep["scale"] == scale]
        for ax, outcome in zip(axes[row], outcomes, strict=True):
            part = data[data["outcome"] == outcome]
            for colour, (occasion, curve) in zip(
                colours, part.groupby("occasion", sort=False), strict=False
            ):
                ax.step(
                    curve["threshold"], curve["pct"], where="post", color=colour,
                    label=occasion_labels[occasion],
                )  # fmt: skip
                ax.fill_between(
                    curve["threshold"], curve["ci_low_pct"], curve["ci_high_pct"], step="post",
                    color=colour, alpha=0.15,
                )  # fmt: skip
            if pd.to_numeric(part["pct"], errors="coerce").isna().all():
                ax.text(
                    0.5, 0.5, "Hidden by disclosure control\n(see threshold_sweep.csv)",
                    transform=ax.transAxes, ha="center", va="center", fontsize=7, color="#555555",
                )  # fmt: skip
            if scale == "percent":
                ax.set_xlim(0, 100)
            rule = mcids.get(outcome)
            configured = getattr(rule, SWEEP_SCALES[scale][1]) if rule else None
            if configured is not None:
                unit = "%" if scale == "percent" else ""
                ax.axvline(configured, color="black", linestyle="--", linewidth=0.8)
                ax.text(configured, 101, f" MCID {configured:g}{unit}", fontsize=7, va="bottom")
            sd = _sweep_sd(part) if scale == "absolute" else None
            if sd:
                top = ax.secondary_xaxis(
                    "top", functions=(lambda x, s=sd: x / s, lambda x, s=sd: x * s)
                )
                top.set_xlabel("SD units of the start values", fontsize=7)
                top.tick_params(labelsize=7)
            ax.set_ylim(0, 108)
            ax.set_xlabel(SWEEP_SCALES[scale][0], fontsize=8)
            ax.set_ylabel("Patients reaching it, %", fontsize=8)
            ns = ", ".join(
                count_text(c["n"].iat[0]) for _, c in part.groupby("occasion", sort=False)
            )
            ax.set_title(f"{labels[outcome]}\nn = {ns}" if row == 0 else f"n = {ns}", fontsize=7.5)
            ax.spines[["right"]].set_visible(False)
    handles = [plt.Line2D([], [], color=c) for c in colours[: sweep["occasion"].nunique()]]
    names = [occasion_labels[o] for o in dict.fromkeys(sweep["occasion"])]
    fig.legend(handles, names, loc="upper center", ncol=len(names), frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.2 / fig.get_figheight()))
    return fig


def _sweep_sd(curve: pd.DataFrame) -> float | None:
    """The SD of the start values behind a sweep's threshold_sd column (threshold / SD)."""
    if "threshold_sd" not in curve:
        return None
    ratio = pd.to_numeric(curve["threshold"], errors="coerce") / pd.to_numeric(
        curve["threshold_sd"], errors="coerce"
    )
    ratio = ratio[np.isfinite(ratio) & (ratio > 0)]
    return float(ratio.median()) if len(ratio) else None


# Okabe & Ito's colour-blind-safe palette: improved, unchanged, deteriorated, could not improve.


def estimated_means(
    means: pd.DataFrame,
    occasion_labels: dict[str, str],
    ranges: dict[str, list[float]],
) -> plt.Figure:
    """Model-estimated means per occasion with CIs (linear mixed model), per outcome."""
    if means.empty:
        return placeholder("No mixed model could be fitted; see lmm.csv and the rule log.")
    return _occasion_panels(
        means,
        "estimated_mean",
        "ci_low",
        "ci_high",
        "observed_n",
        occasion_labels,
        ranges,
        "Estimated mean and CI (scale units)",
    )
