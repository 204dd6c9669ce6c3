"""Figures, written byte-reproducibly (Agg backend, no date or software stamp in the PNG)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

PNG_METADATA = {"Software": None}
DPI = 150


def save_figure(fig: plt.Figure, path: str | Path) -> None:
    """Save a PNG without metadata that changes from run to run, then close it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, metadata=PNG_METADATA)
    plt.close(fig)


def flow_diagram(flow: pd.DataFrame, caption: str) -> plt.Figure:
    """STROBE-style flow of patients: stages down to the analysis set with exclusions to the right,
    then one box per follow-up occasion (each a share of the analysis set, not of the one before)."""
    analysis_order = int(flow.loc[flow["key"] == "analysis_set", "order"].iat[0])
    main = flow[(flow["kind"] == "stage") & (flow["order"] <= analysis_order)].reset_index(
        drop=True
    )
    followup = flow[flow["order"] > analysis_order]
    followup_stages = followup[followup["kind"] == "stage"].reset_index(drop=True)
    step = 1.15
    height = step * len(main) + (1.5 if len(followup_stages) else 0) + 0.9
    fig, ax = plt.subplots(figsize=(8.5, height))
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
        xs = [2.0 + 6.0 * (i + 0.5) / len(followup_stages) for i in range(len(followup_stages))]
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
                fontsize=8.5,
                bbox=box,
            )
    ax.text(
        0.1,
        0.1,
        "\n".join(textwrap.wrap(caption, 125)),
        ha="left",
        va="bottom",
        fontsize=7,
        style="italic",
    )
    return fig
