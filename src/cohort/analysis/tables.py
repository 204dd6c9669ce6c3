"""Descriptive tables in the paper's style: Table 2 (baseline characteristics) and its comparison
with the published figures."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import numpy as np
import pandas as pd

from cohort.core.frames import frame
from cohort.core.labels import level_label

# The dominance evidence columns of a mean (tables.dominance_shares), dropped by rule publish.
DOMINANCE_EVIDENCE = ("dominance_top1_share", "dominance_top2_share", "dominance_negative")
STATISTIC_LABELS = {
    "mean_sd": "mean ± SD",
    "median_iqr": "median [Q1, Q3]",
    "n_pct": "n (%)",
}
# Sample quantiles (config statistics.quantiles): type7 = Hyndman & Fan (Am Stat 1996;50:361)
# type 7, the default of R, pandas and Stata's -centile- ... ; spss = type 6, SPSS's and SAS's
# (PCTLDEF=4) default, which a paper computed in SPSS prints.
QUANTILE_METHODS = {"type7": "linear", "spss": "weibull"}  # numpy's names
QUANTILE_NOTES = {
    "type7": "quartiles by linear interpolation (Hyndman-Fan type 7, R's default)",
    "spss": "quartiles as SPSS computes them (Hyndman-Fan type 6)",
}


def quartiles(values: pd.Series | np.ndarray, method: str = "type7") -> dict[str, float]:
    """Median, Q1 and Q3 of the non-missing values by the configured definition (the one
    function every median and quartile of the pipeline comes from)."""
    v = pd.Series(values).dropna().to_numpy(dtype=float)
    if len(v) == 0:
        return {"median": np.nan, "q1": np.nan, "q3": np.nan}
    q1, median, q3 = np.quantile(v, [0.25, 0.5, 0.75], method=QUANTILE_METHODS[method])
    return {"median": float(median), "q1": float(q1), "q3": float(q3)}


def dominance_shares(values: pd.Series | np.ndarray, prefix: str = "dominance") -> dict[str, float]:
    """The evidence for the dominance rules of a mean or a sum (ACRO's NK and p% checks): the
    largest and second largest value as shares of the sum, and whether any value is negative
    (then dominance is not defined). Not published: rule publish reads and drops it."""
    v = pd.Series(values).dropna().to_numpy(dtype=float)
    top = np.sort(v)[::-1][:2]
    total = float(v.sum()) if len(v) else 0.0
    shares = [float(t / total) if total > 0 else 0.0 for t in top] + [0.0, 0.0]
    return {
        f"{prefix}_top1_share": shares[0],
        f"{prefix}_top2_share": shares[1],
        f"{prefix}_negative": float(bool((v < 0).any())),
    }


def round_half_up(value: float, decimals: int = 0) -> float:
    """Round as a reader expects (2.5 -> 3), not to even."""
    quantum = Decimal(1).scaleb(-decimals)
    return float(Decimal(repr(float(value))).quantize(quantum, rounding=ROUND_HALF_UP))


def fmt(value: float, decimals: int) -> str:
    """A number with fixed decimals, rounded half up; '' when missing."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    return f"{round_half_up(value, decimals):.{decimals}f}"


def percent(n: int, d: int) -> float:
    """n / d as a percentage (NaN when d is 0)."""
    return 100.0 * n / d if d else float("nan")


def format_stat(
    stat: dict[str, float], statistic: str, decimals: int = 0, with_range: bool = False
) -> str:
    """Render one summary in the paper's style: 42 ± 13.4 (18-77), 7 [5, 8], 194 (71%)."""
    if statistic == "mean_sd":
        text = f"{fmt(stat['mean'], decimals)} ± {fmt(stat['sd'], max(decimals, 1))}"
        if with_range and "min" in stat and "max" in stat:
            text += f" ({fmt(stat['min'], decimals)}-{fmt(stat['max'], decimals)})"
        return text
    if statistic == "median_iqr":
        return f"{fmt(stat['median'], decimals)} [{fmt(stat['q1'], decimals)}, {fmt(stat['q3'], decimals)}]"
    return f"{int(stat['n'])} ({fmt(stat['pct'], 0)}%)"


def summarize(
    values: pd.Series, statistic: str, level: Any = None, quantiles: str = "type7"
) -> list[tuple[str, dict[str, float]]]:
    """The statistic of one variable over its valid (non-missing) values: [(level, stat), ...]."""
    valid = values.dropna()
    n_valid = len(valid)
    if statistic == "n_pct":
        if pd.api.types.is_bool_dtype(valid.dtype) or isinstance(level, bool):
            levels = [level] if level is not None else [True]
            as_text = valid.astype(bool)
        else:
            as_text = valid.astype(str)
            if level is not None:
                levels = [str(level)]
            elif isinstance(values.dtype, pd.CategoricalDtype):
                levels = [str(c) for c in values.cat.categories]
            else:
                levels = sorted(as_text.unique())
        return [
            (
                "" if level is not None else str(lv),
                {
                    "n": int((as_text == lv).sum()),
                    "pct": percent(int((as_text == lv).sum()), n_valid),
                    "valid_n": n_valid,
                },
            )
            for lv in levels
        ]
    numeric = valid.astype(float)
    if statistic == "mean_sd":
        stat = {
            "mean": numeric.mean(),
            "sd": numeric.std(ddof=1),
            "min": numeric.min(),
            "max": numeric.max(),
            **dominance_shares(numeric),
        }
    else:
        stat = quartiles(numeric, quantiles)
    stat["valid_n"] = n_valid
    return [("", stat)]


def baseline_table(
    analysis: pd.DataFrame, rows: list[dict[str, Any]], quantiles: str = "type7"
) -> pd.DataFrame:
    """Table 2: one line per configured row (per level for categorical rows), with valid n."""
    n_total = len(analysis)
    lines = []
    for row in rows:
        variable = row["variable"]
        if variable not in analysis.columns:
            raise KeyError(f"baseline row '{variable}': no such variable in the analysis set")
        statistic = row["statistic"]
        for level, stat in summarize(analysis[variable], statistic, row.get("level"), quantiles):
            lines.append(
                {
                    "variable": variable,
                    "label": row["label"],
                    "level": level,
                    "statistic": STATISTIC_LABELS[statistic],
                    # Min and max (single patients' values) are columns that disclosure
                    # control drops unless a study allows them; never inside the text.
                    "value": format_stat(stat, statistic, row.get("decimals", 0)),
                    "valid_n": stat["valid_n"],
                    "n": n_total,
                    **{
                        k: stat.get(k, np.nan)
                        for k in ("mean", "sd", "min", "max", "median", "q1", "q3")
                    },
                    "count": stat.get("n", np.nan),
                    "pct": stat.get("pct", np.nan),
                    **{k: stat.get(k, np.nan) for k in DOMINANCE_EVIDENCE},
                }
            )
    table = pd.DataFrame(lines)
    if (table["valid_n"] > n_total).any():
        raise AssertionError("baseline: a valid n exceeds the analysis set")
    return table


BASELINE_VS_PAPER_COLUMNS = (
    "label", "level", "statistic", "paper", "this_run", "paper_valid_n", "this_run_valid_n",
)  # fmt: skip


def baseline_vs_paper(
    table: pd.DataFrame,
    rows: list[dict[str, Any]],
    levels: dict[str, dict[str, str]] | None = None,
) -> pd.DataFrame:
    """Each Table 2 line: the paper's figure beside this run's, with both valid n; a level by its
    contract label (`levels`: variable -> code -> label)."""
    lines = []
    by_var = {r["variable"]: r for r in rows}
    for _, line in table.iterrows():
        row = by_var[line["variable"]]
        paper = row.get("paper")
        if not paper:
            continue
        statistic = row["statistic"]
        figure = paper["levels"].get(line["level"]) if "levels" in paper else paper
        if figure is None:
            continue
        lines.append(
            {
                "label": line["label"],
                "level": level_label(line["variable"], line["level"], levels or {}),
                "statistic": line["statistic"],
                "paper": format_stat(
                    figure, statistic, row.get("decimals", 0), bool(row.get("range"))
                ),
                "this_run": line["value"],
                "paper_valid_n": paper.get("valid_n", ""),
                "this_run_valid_n": line["valid_n"],
            }
        )
    return frame(lines, BASELINE_VS_PAPER_COLUMNS)


TABLE2_COLUMNS = ["characteristic", "value", "level", "statistic", "valid_n"]


def table2_lines(table: pd.DataFrame, levels: dict[str, dict[str, str]]) -> pd.DataFrame:
    """Table 2 in the journal's form, the one layout of it (Markdown and publication tables):
    one line per statistic; a variable with levels has a heading line and one indented line
    per level, by its contract label. `statistic` is set on the line that names the variable;
    `valid_n` where the valid n is below N (or hidden: its marker)."""
    n_shown = table["n"].iat[0] if len(table) else 0
    n_total = pd.to_numeric(pd.Series([n_shown]), errors="coerce").iat[0]
    lines, previous = [], None
    for _, line in table.iterrows():
        valid_n = pd.to_numeric(pd.Series([line["valid_n"]]), errors="coerce").iat[0]
        shown = not pd.isna(valid_n) and valid_n >= n_total  # a hidden valid n reads its marker
        valid = "" if shown else str(line["valid_n"])
        if str(line["level"]) not in ("", "nan", "None"):
            if line["variable"] != previous:
                lines.append([line["label"], "", False, line["statistic"], valid])
            label = level_label(line["variable"], line["level"], levels)
            lines.append([label, line["value"], True, "", ""])
        else:
            lines.append([line["label"], line["value"], False, line["statistic"], valid])
        previous = line["variable"]
    return pd.DataFrame(lines, columns=TABLE2_COLUMNS)


def baseline_markdown(
    table: pd.DataFrame, title: str, notes: list[str], levels: dict[str, dict[str, str]]
) -> str:
    """Table 2 as Markdown (`table2_lines`): valid n shown where it is below N, notes as a
    footer."""
    n_shown = table["n"].iat[0] if len(table) else 0  # a marker where the study is too small
    out = [f"# {title}", "", f"| Characteristic | N = {n_shown} |", "|---|---|"]
    for _, line in table2_lines(table, levels).iterrows():
        if line["level"]:
            out.append(f"| &nbsp;&nbsp;{line['characteristic']} | {line['value']} |")
            continue
        valid = f" (valid n {line['valid_n']})" if line["valid_n"] else ""
        out.append(f"| {line['characteristic']}, {line['statistic']}{valid} | {line['value']} |")
    out += [""] + [f"*{n}*  " for n in notes]
    return "\n".join(out) + "\n"
