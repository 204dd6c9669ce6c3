"""Figures, written byte-reproducibly (Agg backend, no date or software stamp in the PNG)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

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
    colours = matplotlib.colormaps["Blues"].with_extremes(bad="#d9d9d9")
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
