"""Figures of response, drawn from the published tables: directions of change, the course over the
follow-ups, the rate under each definition of clinical significance, the forest plot of the
predictors of response and the tipping point.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker as ticker  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from cohort.publish.figures import TWO_COLUMNS, _laid_out, count_text, placeholder

DIRECTION_COLOURS = {
    "improved": "#009E73",
    "unchanged": "#BBBBBB",
    "deteriorated": "#D55E00",
    "could_not_improve": "#56B4E9",
}
DIRECTION_LABELS = ("Improved", "Unchanged", "Deteriorated", "Could not improve")


def _stacked_shares(
    rows: pd.DataFrame,
    names: list[str],
    parts: dict[str, tuple[str, str]],
    xlabel: str,
) -> plt.Figure:
    """One stacked bar of shares (columns `<part>_pct`, in %) per row, coloured and labelled by
    `parts` (part -> colour, legend label). A share hidden by disclosure control is not drawn;
    the bar says that some are suppressed."""
    fig, ax = plt.subplots(figsize=(TWO_COLUMNS, 0.3 * len(rows) + 1.0))
    for y, (_, row) in enumerate(rows.iterrows()):
        left, hidden = 0.0, False
        for part, (colour, _) in parts.items():
            raw = row.get(f"{part}_pct")
            share = pd.to_numeric(pd.Series([raw]), errors="coerce").iat[0]
            if pd.isna(share):  # a marker ([s], [c]) is suppressed; a blank is not applicable
                hidden |= isinstance(raw, str) and raw.strip() != ""
                continue
            ax.barh(y, share, left=left, color=colour, edgecolor="white", height=0.7)
            if share >= 8:
                ax.text(left + share / 2, y, f"{share:.0f}", ha="center", va="center", fontsize=7)
            left += share
        if hidden:
            ax.text(101, y, "some shares suppressed", va="center", fontsize=7, color="#555555")
    ax.set_yticks(range(len(rows)), names, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel(xlabel)
    ax.legend(
        handles=[plt.Rectangle((0, 0), 1, 1, color=c) for c, _ in parts.values()],
        labels=[label for _, label in parts.values()],
        fontsize=7,
        ncol=len(parts),
        loc="lower center",
        bbox_to_anchor=(0.5, 1.0),
        frameon=False,
    )
    ax.spines[["top", "right"]].set_visible(False)
    return _laid_out(fig)


def direction_bars(
    directions: pd.DataFrame, labels: dict[str, str], occasion_labels: dict[str, str]
) -> plt.Figure:
    """Improved, unchanged, deteriorated (and could not improve) as shares of the responder
    population, one stacked bar per outcome and follow-up occasion."""
    if directions.empty:
        return placeholder("No follow-up occasion to classify.")
    rows = directions.reset_index(drop=True)
    names = [
        f"{labels.get(r['outcome'], r['outcome'])}, {occasion_labels.get(r['occasion'], r['occasion'])}"
        f" (n = {count_text(r['n'])})"
        for _, r in rows.iterrows()
    ]
    parts = {
        part: (colour, label)
        for (part, colour), label in zip(DIRECTION_COLOURS.items(), DIRECTION_LABELS, strict=True)
    }
    return _stacked_shares(rows, names, parts, "Patients, % of the responder population")


COURSE_COLOURS = {  # Okabe-Ito: sustained bluish green, late sky blue, lost orange, never grey
    "sustained": ("#009E73", "Sustained (both)"),
    "late": ("#56B4E9", "Late (second only)"),
    "lost": ("#E69F00", "Lost (first only)"),
    "never": ("#BBBBBB", "Never"),
}


def course_bars(course: pd.DataFrame, labels: dict[str, str]) -> plt.Figure:
    """Sustained, late, lost and never as shares of the patients classified at both follow-ups,
    one stacked bar per outcome."""
    if course.empty:
        return placeholder("One follow-up occasion: no course over two to show.")
    rows = course.reset_index(drop=True)
    names = [
        f"{labels.get(r['outcome'], r['outcome'])} (n = {count_text(r['n'])})"
        for _, r in rows.iterrows()
    ]
    return _stacked_shares(
        rows, names, COURSE_COLOURS, "Patients, % of those classified at both follow-ups"
    )


ANALYSIS_MARKERS = {  # Okabe-Ito: the three denominators of a rate under each definition
    "available cases": ("o", "#0072B2", "Available cases"),
    "all in analysis set, missing = non-responder": ("s", "#E69F00", "All, missing = not improved"),
    "multiple imputation": ("D", "#009E73", "Multiple imputation"),
}


def definition_rates_figure(
    rates: pd.DataFrame,
    definitions: list[tuple[str, str]],
    labels: dict[str, str],
    occasion_labels: dict[str, str],
) -> plt.Figure:
    """The responder rate under each definition of clinical significance (rows; the primary
    first) with its CI, per outcome (panel rows) and follow-up (panel columns), under the three
    handlings of missing follow-up. A rate hidden or not defined is not drawn."""
    if rates.empty:
        return placeholder("No follow-up occasion to classify.")
    outcomes = list(dict.fromkeys(rates["outcome"]))
    occasions = list(dict.fromkeys(rates["occasion"]))
    names = [name for name, _ in definitions]
    fig, axes = plt.subplots(
        len(outcomes), len(occasions), squeeze=False, sharex=True, sharey=True,
        figsize=(TWO_COLUMNS, 0.2 * len(names) * len(outcomes) + 1.0),
    )  # fmt: skip
    offsets = dict(zip(ANALYSIS_MARKERS, (-0.22, 0.0, 0.22), strict=True))
    for r, outcome in enumerate(outcomes):
        for c, occasion in enumerate(occasions):
            ax = axes[r][c]
            part = rates[(rates["outcome"] == outcome) & (rates["occasion"] == occasion)]
            drawn: set[str] = set()
            for analysis, (marker, colour, _) in ANALYSIS_MARKERS.items():
                rows = part[part["analysis"] == analysis]
                for _, row in rows.iterrows():
                    values = pd.to_numeric(
                        pd.Series([row["pct"], row["ci_low_pct"], row["ci_high_pct"]]),
                        errors="coerce",
                    )
                    if values.isna().any() or row["definition"] not in names:
                        continue
                    drawn.add(row["definition"])
                    y = names.index(row["definition"]) + offsets[analysis]
                    pct, low, high = values
                    ax.errorbar(
                        pct, y, xerr=[[max(0.0, pct - low)], [max(0.0, high - pct)]],
                        fmt=marker, color=colour,
                        markersize=3.5, elinewidth=0.9, capsize=0,
                    )  # fmt: skip
            _say_why_not_drawn(ax, part, names, drawn)
            ax.axhspan(-0.45, 0.45, color="#EEEEEE", zorder=0)  # the primary definition
            ax.set_xlim(0, 100)
            ax.set_title(
                f"{labels.get(outcome, outcome)}\n{occasion_labels.get(occasion, occasion)}",
                fontsize=7.5,
            )
            ax.spines[["top", "right"]].set_visible(False)
            ax.tick_params(labelsize=7)
            if r == len(outcomes) - 1:
                ax.set_xlabel("Responders, %", fontsize=8)
    axes[0][0].set_yticks(range(len(names)), [label for _, label in definitions])
    axes[0][0].set_ylim(len(names) - 0.4, -0.6)  # the first definition on top, room at both ends
    fig.legend(
        handles=[
            plt.Line2D([], [], marker=m, color=col, linestyle="none", markersize=4)
            for m, col, _ in ANALYSIS_MARKERS.values()
        ],
        labels=[label for _, _, label in ANALYSIS_MARKERS.values()],
        fontsize=7, ncol=3, loc="upper center", frameon=False,
    )  # fmt: skip
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.2 / fig.get_figheight()))  # the legend above
    return fig


def _say_why_not_drawn(ax: plt.Axes, part: pd.DataFrame, names: list[str], drawn: set[str]) -> None:
    """Beside each definition without a point in the panel: why (withheld, not defined,
    suppressed)."""
    for y, name in enumerate(names):  # say why a definition has no point
        methods = part.loc[part["definition"] == name, "method"].astype(str)
        if methods.str.startswith("not published").any():
            ax.text(
                99,
                y,
                "counts withheld",
                fontsize=7,
                va="center",
                ha="right",
                color="#555555",
            )
        if name in drawn:
            continue
        if methods.str.startswith("not defined at this occasion").any():
            text = "a slope over all occasions: at the last"
        elif methods.str.startswith("not defined").any():
            text = "not defined (see the definitions table)"
        else:
            text = "suppressed"
        ax.text(2, y, text, fontsize=7, va="center", color="#555555")


ODDS_RATIO_TICKS = (0.001, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100, 1000)


def _odds_ratio_axis(ax: plt.Axes, most: int = 7) -> None:
    """Log-scale x axis labelled in plain odds ratios (0.5, 1, 2), no minor labels: matplotlib's
    default minor labels overlap on narrow ranges and cost half a second per figure to lay out."""
    ax.set_xscale("log")
    low, high = ax.get_xlim()
    ticks = [t for t in ODDS_RATIO_TICKS if low <= t <= high]
    if len(ticks) > most:  # a wide range: decades only
        ticks = [t for t in ticks if np.log10(t).is_integer()]
    ax.xaxis.set_major_locator(ticker.FixedLocator(ticks))
    ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda value, _: f"{value:g}"))
    ax.xaxis.set_minor_locator(ticker.NullLocator())


FOREST_OCCASION_COLOURS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7")  # Okabe-Ito


def forest_plot(
    predictors: pd.DataFrame,
    term_labels: dict[str, str],
    outcome_labels: dict[str, str],
    occasion_labels: dict[str, str],
) -> plt.Figure:
    """Odds ratios with CIs on one log axis shared by every panel: outcomes in rows (each with
    its own terms), complete case and multiple imputation in columns, the follow-up occasions
    in colours; terms by their labels (cohort.core.labels.term_label)."""
    if "odds_ratio" not in predictors or predictors["odds_ratio"].isna().all():
        return placeholder(
            "No model of response could be fitted; see predictors.csv and the rule log."
        )
    data = predictors.dropna(subset=["odds_ratio"]).reset_index(drop=True)
    outcomes = list(dict.fromkeys(data["outcome"]))
    analyses = [
        a for a in ("complete case", "multiple imputation") if (data["analysis"] == a).any()
    ]
    occasions = list(dict.fromkeys(data["occasion"]))
    terms_of = {o: list(dict.fromkeys(data.loc[data["outcome"] == o, "term"])) for o in outcomes}
    heights = [0.13 * len(terms_of[o]) + 0.35 for o in outcomes]
    fig, axes = plt.subplots(
        len(outcomes), len(analyses), figsize=(TWO_COLUMNS, sum(heights) + 0.6), sharex=True,
        sharey="row", squeeze=False, gridspec_kw={"height_ratios": heights},
    )  # fmt: skip
    step = 0.6 / max(len(occasions), 1)
    for r, outcome in enumerate(outcomes):
        terms = terms_of[outcome]
        for c, analysis in enumerate(analyses):
            ax = axes[r][c]
            part = data[(data["outcome"] == outcome) & (data["analysis"] == analysis)]
            for k, occasion in enumerate(occasions):
                rows = part[part["occasion"] == occasion]
                y = (
                    np.array([terms.index(t) for t in rows["term"]])
                    + (k - (len(occasions) - 1) / 2) * step
                )
                ax.errorbar(
                    rows["odds_ratio"], y,
                    xerr=[rows["odds_ratio"] - rows["ci_low"], rows["ci_high"] - rows["odds_ratio"]],
                    fmt="o", color=FOREST_OCCASION_COLOURS[k % 4], markersize=2.5, elinewidth=0.8,
                    capsize=0, label=occasion_labels.get(occasion, occasion),
                )  # fmt: skip
            ax.axvline(1, color="black", linewidth=0.6)
            ax.spines[["top", "right"]].set_visible(False)
            if r == 0:
                ax.set_title(analysis.capitalize(), fontsize=8)
        axes[r][0].set_yticks(range(len(terms)), [term_labels.get(t, t) for t in terms])
        axes[r][0].set_ylim(len(terms) - 0.5, -0.5)
        axes[r][0].set_ylabel(outcome_labels.get(outcome, outcome), fontsize=7.5)
    _odds_ratio_axis(axes[0][0])
    for ax in axes[-1]:
        ax.set_xlabel("Odds ratio of response (log scale)")
    handles, names = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, names, loc="upper center", ncol=len(occasions), frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.22 / fig.get_figheight()))
    return fig


def tipping_point_figure(
    table: pd.DataFrame, labels: dict[str, str], occasion_labels: dict[str, str]
) -> plt.Figure:
    """Delta-adjusted imputation (cohort.analysis.tipping): per outcome (rows), the responder rate and the
    mean improvement (columns) against delta in SD units of the start values, one line with its
    CI band per follow-up; dashed: the margin and 0, where the conclusions would change."""
    curves = table[table["section"] == "delta"]
    if curves.empty:
        return placeholder("No follow-up occasion to impute.")
    outcomes = list(dict.fromkeys(curves["outcome"]))
    fig, axes = plt.subplots(
        len(outcomes),
        2,
        squeeze=False,
        sharex=True,
        figsize=(TWO_COLUMNS, 1.9 * len(outcomes) + 0.5),
    )
    panels = (
        ("rate_pct", "rate_ci_low_pct", "rate_ci_high_pct", "Responders, %"),
        ("improvement", "improvement_ci_low", "improvement_ci_high", "Mean improvement"),
    )
    for r, outcome in enumerate(outcomes):
        part = curves[curves["outcome"] == outcome]
        for c, (y, low, high, title) in enumerate(panels):
            ax = axes[r][c]
            for k, (occasion, line) in enumerate(part.groupby("occasion", sort=False)):
                x = pd.to_numeric(line["delta_sd"], errors="coerce")
                values = [pd.to_numeric(line[col], errors="coerce") for col in (y, low, high)]
                colour = FOREST_OCCASION_COLOURS[k % 4]
                ax.plot(x, values[0], color=colour, marker="o", markersize=2.5, linewidth=1.0,
                        label=occasion_labels.get(occasion, occasion))  # fmt: skip
                ax.fill_between(x, values[1], values[2], color=colour, alpha=0.15, linewidth=0)
            null = (
                float(pd.to_numeric(part["rate_margin_pct"], errors="coerce").iloc[0])
                if c == 0
                else 0.0
            )
            ax.axhline(null, color="#555555", linestyle="--", linewidth=0.8)
            ax.set_title(f"{labels.get(outcome, outcome)}: {title.lower()}", fontsize=7.5)
            ax.set_ylabel(title, fontsize=8)
            ax.spines[["top", "right"]].set_visible(False)
            ax.tick_params(labelsize=7)
            if r == len(outcomes) - 1:
                ax.set_xlabel(
                    "Delta (SD of the start values) added to the missing follow-ups", fontsize=8
                )
    axes[0][0].legend(fontsize=7, frameon=False)
    fig.tight_layout()
    return fig
