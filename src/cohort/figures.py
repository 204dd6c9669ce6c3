"""Figures, written byte-reproducibly (Agg backend, no date or software stamp in the PNG)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker as ticker  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from cohort.settings import McidRule  # noqa: E402
from cohort.tables import quartiles  # noqa: E402

PNG_METADATA = {"Software": None}
PDF_METADATA = {"Creator": None, "Producer": None, "CreationDate": None}  # no date, no version
DPI = 300
MM = 1 / 25.4
ONE_COLUMN, TWO_COLUMNS = 85 * MM, 180 * MM  # journal widths, inches
SMALLEST_TEXT = 7  # points at print size
plt.rcParams.update(
    {
        "font.size": 7,
        "axes.titlesize": 8,
        "axes.labelsize": 7,
        "xtick.labelsize": 7,
        "ytick.labelsize": 7,
        "legend.fontsize": 7,
        "axes.linewidth": 0.6,
        "lines.linewidth": 1.0,
        "pdf.fonttype": 42,  # TrueType: text stays text in the PDF
    }
)


def count_text(value: object) -> str:
    """A count as a label: '240', or the disclosure marker the published table prints."""
    number = pd.to_numeric(pd.Series([value]), errors="coerce").iat[0]
    if pd.isna(number):
        return "(not published)" if isinstance(value, float) else str(value)
    return f"{int(number)}"


def _wrapped(text: str, width: int = 16) -> str:
    """A tick label on lines of at most `width` characters (three panels share 180 mm)."""
    return "\n".join(textwrap.wrap(text, width))


def _laid_out(fig: plt.Figure) -> plt.Figure:
    """The panels laid out in the figure (captions are not drawn: results/figures/legends.md)."""
    fig.tight_layout()
    return fig


def small_text(fig: plt.Figure) -> list[str]:
    """Visible text of the figure smaller than SMALLEST_TEXT points at print size."""
    return [
        f"{t.get_text()!r}: {t.get_fontsize():g} pt"
        for t in fig.findobj(plt.Text)
        if t.get_visible() and t.get_text().strip() and t.get_fontsize() < SMALLEST_TEXT - 1e-9
    ]


def save_figure(fig: plt.Figure, path: str | Path) -> None:
    """Save the figure at print size as a 300 dpi PNG and a vector PDF beside it (same name),
    neither with a date or a software stamp (byte-reproducible), then close it. Stops when the
    figure is not one or two journal columns wide or has text below 7 pt."""
    path = Path(path)
    width = fig.get_figwidth()
    if not (np.isclose(width, ONE_COLUMN) or np.isclose(width, TWO_COLUMNS)):
        raise ValueError(f"{path.name}: {width / MM:.0f} mm wide, not 85 or 180 mm")
    if small_text(fig):
        raise ValueError(f"{path.name}: text below {SMALLEST_TEXT} pt: {small_text(fig)[:3]}")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, metadata=PNG_METADATA)
    fig.savefig(path.with_suffix(".pdf"), metadata=PDF_METADATA)
    plt.close(fig)


def placeholder(message: str) -> plt.Figure:
    """A figure that says why there is nothing to plot (a rule's outputs always exist)."""
    fig, ax = plt.subplots(figsize=(ONE_COLUMN, 30 * MM))
    ax.axis("off")
    ax.text(0.5, 0.5, "\n".join(textwrap.wrap(message, 45)), ha="center", va="center", fontsize=8)
    return fig


def flow_diagram(flow: pd.DataFrame) -> plt.Figure:
    """STROBE-style flow of patients: stages down to the analysis set with exclusions to the right,
    then one box per follow-up occasion (each a share of the analysis set, not of the one before)."""
    analysis_order = int(flow.loc[flow["key"] == "analysis_set", "order"].iat[0])
    main = flow[(flow["kind"] == "stage") & (flow["order"] <= analysis_order)].reset_index(
        drop=True
    )
    followup = flow[flow["order"] > analysis_order]
    followup_stages = followup[followup["kind"] == "stage"].reset_index(drop=True)
    step = 1.15
    height = step * len(main) + (1.5 if len(followup_stages) else 0) + 0.2
    fig, ax = plt.subplots(figsize=(TWO_COLUMNS, height * 0.75))
    ax.set_ylim(0, height)
    ax.set_xlim(0, 10)
    ax.set_ylim(0, height)
    ax.axis("off")
    box = {"boxstyle": "round,pad=0.4", "facecolor": "#eef3f8", "edgecolor": "#2b4c6f"}
    side = {"boxstyle": "round,pad=0.3", "facecolor": "#fbf3ea", "edgecolor": "#9a6324"}
    y_of: dict[int, float] = {}
    for i, stage in main.iterrows():
        y = height - 0.5 - step * i
        y_of[int(stage["order"])] = y
        ax.text(
            3.0,
            y,
            f"{stage['label']}\nn = {stage['n']}",
            ha="center",
            va="center",
            fontsize=9,
            bbox=box,
        )
        if i > 0:
            ax.annotate(
                "",
                xy=(3.0, y + 0.32),
                xytext=(3.0, y + step - 0.32),
                arrowprops={"arrowstyle": "->", "color": "#2b4c6f"},
            )
    exclusions = flow[(flow["kind"] == "excluded") & (flow["order"] < analysis_order)]
    # A box saying n = 0 excludes no one: left out (a hidden count keeps its marker).
    exclusions = exclusions[pd.to_numeric(exclusions["n"], errors="coerce").ne(0)]
    before = exclusions["order"].map(lambda o: max(k for k in y_of if k < o))
    for order, group in exclusions.groupby(before):
        y = y_of[order] - step / 2
        text = "\n".join(f"{r['label']}: n = {r['n']}" for _, r in group.iterrows())
        ax.annotate(
            "", xy=(5.6, y), xytext=(3.0, y), arrowprops={"arrowstyle": "->", "color": "#9a6324"}
        )
        ax.text(5.7, y, text, ha="left", va="center", fontsize=8, bbox=side)
    if len(followup_stages):
        y0 = y_of[analysis_order]
        y = y0 - 1.5
        xs = [0.5 + 9.0 * (i + 0.5) / len(followup_stages) for i in range(len(followup_stages))]
        for x, (_, stage) in zip(xs, followup_stages.iterrows(), strict=True):
            missing = followup[
                (followup["kind"] == "excluded")
                & (followup["key"] == stage["key"].replace("assessed_", "missing_"))
            ]
            lost = f"\n(not assessed: n = {missing['n'].iat[0]})" if len(missing) else ""
            ax.annotate(
                "",
                xy=(x, y + 0.42),
                xytext=(3.0, y0 - 0.32),
                arrowprops={"arrowstyle": "->", "color": "#2b4c6f"},
            )
            ax.text(
                x,
                y,
                f"{stage['label']}\nn = {stage['n']}{lost}",
                ha="center",
                va="center",
                fontsize=8,
                bbox=box,
            )
    return fig


def category_bars(categories: pd.DataFrame) -> plt.Figure:
    """Patients per intervention category, sorted, each bar labelled n (%)."""
    data = categories.assign(
        patients_pct=pd.to_numeric(categories["patients_pct"], errors="coerce").fillna(0),
        order=pd.to_numeric(categories["patients_n"], errors="coerce").fillna(0),
    ).sort_values(["order", "code"], ascending=[True, False], kind="stable")
    fig, ax = plt.subplots(figsize=(TWO_COLUMNS, 0.3 * len(data) + 1.0))
    bars = ax.barh(data["category"], data["patients_pct"], color="#4b7bb0")
    for bar, (_, row) in zip(bars, data.iterrows(), strict=True):
        ax.text(
            bar.get_width() + 1,
            bar.get_y() + bar.get_height() / 2,
            row["patients"],
            va="center",
            fontsize=8,
        )
    ax.set_xlim(0, 115)
    ax.set_xlabel(
        f"Patients who received the category at least once, % of N = {count_text(data['N'].iat[0])}"
    )
    ax.spines[["top", "right"]].set_visible(False)
    return _laid_out(fig)


def cooccurrence_heatmap(matrix: pd.DataFrame, n: int) -> plt.Figure:
    """Patients who received both categories, coloured on the scale of the pairs; the diagonal
    (who received the category) is printed in bold on white, so that it does not set the
    scale; a suppressed cell is grey with its marker, not a zero."""
    codes = [c for c in matrix.columns if c not in ("code", "category")]
    shown = matrix[codes].astype(str).to_numpy()  # suppressed cells read "<5"
    values = matrix[codes].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
    percent = values / n * 100
    diagonal = np.eye(len(codes), dtype=bool)
    pairs = np.where(diagonal, np.nan, percent)
    top = np.nanmax(pairs) if np.isfinite(pairs).any() else 100.0
    top = float(min(100.0, max(10.0, np.ceil(top / 10) * 10)))
    fig, ax = plt.subplots(figsize=(TWO_COLUMNS, 5.6))
    colours = matplotlib.colormaps["Blues"].copy()
    colours.set_bad("#d9d9d9")
    suppressed_or_pair = np.where(diagonal & np.isfinite(values), np.nan, percent)
    image = ax.imshow(np.ma.masked_invalid(suppressed_or_pair), cmap=colours, vmin=0, vmax=top)
    for i in range(len(codes)):
        for j in range(len(codes)):
            on_diagonal = i == j and np.isfinite(values[i, j])
            if on_diagonal:
                ax.add_patch(
                    plt.Rectangle((j - 0.5, i - 0.5), 1, 1, facecolor="white", edgecolor="#555555")
                )
            dark = not on_diagonal and np.nan_to_num(percent[i, j]) > 0.6 * top
            ax.text(
                j,
                i,
                shown[i, j],
                ha="center",
                va="center",
                fontsize=7,
                fontweight="bold" if on_diagonal else "normal",
                color="white" if dark else "black",
            )
    ax.set_xticks(range(len(codes)), codes)
    ax.set_yticks(
        range(len(codes)),
        [f"{c} {label}" for c, label in zip(codes, matrix["category"], strict=True)],
        fontsize=8,
    )
    ax.set_xlabel("Category code (diagonal, bold: patients who received the category)")
    fig.colorbar(image, ax=ax, label=f"Patients with both, % of N = {count_text(n)}", shrink=0.8)
    return _laid_out(fig)


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
    box (quartiles by the tables' definition, cohort.tables.quartiles; whiskers to the last
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
    in colours; terms by their labels (cohort.labels.term_label)."""
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


def tipping_point_figure(
    table: pd.DataFrame, labels: dict[str, str], occasion_labels: dict[str, str]
) -> plt.Figure:
    """Delta-adjusted imputation (cohort.tipping): per outcome (rows), the responder rate and the
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
