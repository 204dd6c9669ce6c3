"""The pooling's figures: a forest plot of each meta-analysed estimate and a funnel plot of
the sites' responder rates (cohort.analysis.pooling), saved as cohort.publish.figures saves every figure."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from cohort.analysis.pooling import funnel_limits
from cohort.publish.figures import ONE_COLUMN, TWO_COLUMNS


def _panel_grid(count: int, message: str, height: float) -> tuple[plt.Figure, np.ndarray | None]:
    """Two columns of panels at two-column width, or a one-column note where there are none."""
    if not count:
        fig, ax = plt.subplots(figsize=(ONE_COLUMN, ONE_COLUMN * 0.4))
        ax.text(0.5, 0.5, message, ha="center", fontsize=8)
        ax.axis("off")
        return fig, None
    rows = int(np.ceil(count / 2))
    fig, axes = plt.subplots(rows, 2, figsize=(TWO_COLUMNS, height * rows), squeeze=False)
    for ax in axes.ravel()[count:]:
        ax.axis("off")
    return fig, axes


def forest_plot(estimates: pd.DataFrame, meta: pd.DataFrame) -> plt.Figure:
    """Per estimand, outcome and occasion: each site's estimate with its 95% CI (z), the random
    effects estimate with its Hartung-Knapp CI (diamond) and prediction interval (line)."""
    pooled = meta[meta["k"] >= 2]
    panels = list(pooled[["estimand", "outcome", "occasion"]].itertuples(index=False))
    fig, axes = _panel_grid(len(panels), "no estimate published by two or more sites", 1.8)
    if axes is None:
        return fig
    for ax, (estimand, outcome, occasion) in zip(axes.ravel(), panels, strict=False):
        sites = estimates[(estimates["estimand"] == estimand) & (estimates["outcome"] == outcome)
                          & (estimates["occasion"] == occasion)
                          & np.isfinite(estimates["estimate"].astype(float))]  # fmt: skip
        m = pooled[(pooled["estimand"] == estimand) & (pooled["outcome"] == outcome)
                   & (pooled["occasion"] == occasion)].iloc[0]  # fmt: skip
        y = np.arange(len(sites))[::-1] + 1
        half = 1.96 * np.sqrt(sites["variance"].astype(float))
        ax.errorbar(sites["estimate"], y, xerr=half, fmt="s", color="#0072B2", ms=3, capsize=0)
        ax.plot([m["pi_low"], m["pi_high"]], [0, 0], color="#555555", lw=1)
        ax.fill([m["ci_low"], m["estimate"], m["ci_high"], m["estimate"]], [0, 0.25, 0, -0.25],
                color="#D55E00")  # fmt: skip
        ax.axvline(m["estimate"], color="#D55E00", lw=0.5, ls=":")
        ax.set_yticks([*y, 0], [*sites["site"], "random effects"], fontsize=7)
        ax.set_title(f"{outcome}, {occasion}\n{estimand}", fontsize=7.5)
        ax.set_xlabel("estimate, 95% CI; diamond: Hartung-Knapp CI, line: PI", fontsize=7)
        ax.tick_params(axis="x", labelsize=7)
        ax.spines[["top", "right"]].set_visible(False)
    for ax in axes.ravel()[len(panels) :]:
        ax.axis("off")
    fig.tight_layout()
    return fig


def funnel_plot(comparison: pd.DataFrame) -> plt.Figure:
    """Each site's responder rate against its n, with the pooled rate's exact 95% and 99.8%
    limits, one panel per outcome and occasion."""
    compared = comparison[comparison["position"].str.match(r"(within|above|below)")]
    panels = list(compared[["outcome", "occasion"]].drop_duplicates().itertuples(index=False))
    fig, axes = _panel_grid(len(panels), "no site's rate and pooled rate both published", 1.9)
    if axes is None:
        return fig
    for ax, (outcome, occasion) in zip(axes.ravel(), panels, strict=False):
        group = compared[(compared["outcome"] == outcome) & (compared["occasion"] == occasion)]
        p = float(group["pooled_pct"].iat[0]) / 100
        n = np.arange(max(5, int(group["n"].min() * 0.5)), int(group["n"].max() * 1.5) + 1)
        for coverage, style in ((0.95, "--"), (0.998, ":")):
            low, high = funnel_limits(p, n, coverage)
            ax.plot(n, 100 * low, style, color="#555555", lw=0.8)
            ax.plot(n, 100 * high, style, color="#555555", lw=0.8)
        ax.axhline(100 * p, color="#D55E00", lw=0.8)
        ax.scatter(group["n"], group["pct"], s=12, color="#0072B2", zorder=3)
        for _, r in group.iterrows():
            ax.annotate(str(r["site"]), (r["n"], r["pct"]), fontsize=7, xytext=(3, 2),
                        textcoords="offset points")  # fmt: skip
        ax.set_title(f"{outcome}, {occasion}", fontsize=7.5)
        ax.set_xlabel("patients (n)", fontsize=7)
        ax.set_ylabel("responders, %", fontsize=7)
        ax.tick_params(labelsize=7)
        ax.spines[["top", "right"]].set_visible(False)
    for ax in axes.ravel()[len(panels) :]:
        ax.axis("off")
    fig.tight_layout()
    return fig


def adjusted_funnel_plot(adjusted: pd.DataFrame) -> plt.Figure:
    """Each site's case-mix adjusted responder rate against its n, with its own exact 95% (bar)
    and 99.8% (thin line) limits (they depend on the site's mix, so no common funnel), one panel
    per outcome, occasion and adjusting variable."""
    compared = adjusted[adjusted["position"].astype(str).str.match(r"(within|above|below)")]
    keys = ["outcome", "occasion", "adjusted_by"]
    panels = list(compared[keys].drop_duplicates().itertuples(index=False))
    fig, axes = _panel_grid(len(panels), "no site compared after case-mix adjustment", 1.9)
    if axes is None:
        return fig
    for ax, (outcome, occasion, by) in zip(axes.ravel(), panels, strict=False):
        group = compared[(compared["outcome"] == outcome) & (compared["occasion"] == occasion)
                         & (compared["adjusted_by"] == by)]  # fmt: skip
        n = group["n"].astype(float).to_numpy()
        for low, high, width in (("limit998", "limit998", 0.6), ("limit95", "limit95", 2.5)):
            ax.vlines(
                n, group[f"{low}_low_pct"], group[f"{high}_high_pct"], color="#555555", lw=width
            )
        ax.axhline(float(group["pooled_pct"].iat[0]), color="#D55E00", lw=0.8)
        ax.scatter(n, group["adjusted_pct"], s=14, color="#0072B2", zorder=3)
        for _, r in group.iterrows():
            ax.annotate(str(r["site"]), (r["n"], r["adjusted_pct"]), fontsize=7, xytext=(4, 2),
                        textcoords="offset points")  # fmt: skip
        ax.set_xlim(0, n.max() * 1.25)
        ax.set_title(f"{outcome}, {occasion}: adjusted by {by}", fontsize=7.5)
        ax.set_xlabel("patients (n); bar: exact 95% limits, line: 99.8%", fontsize=7)
        ax.set_ylabel("adjusted responders, %", fontsize=7)
        ax.tick_params(labelsize=7)
        ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    return fig
