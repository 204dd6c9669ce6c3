"""Disclosure control on tiny subgroups: small cells and what derives from them are hidden, and
no hidden cell can be recovered from a published total."""

from __future__ import annotations

import pandas as pd

from cohort.disclosure import TABLE_RULES, Disclosure, suppress
from cohort.outputs import read_csv, read_protected, write_csv

MIN = 5


def hidden(series: pd.Series) -> pd.Series:
    return series.astype(str) == f"<{MIN}"


def test_primary_suppression_hides_derived_values_but_not_zeros():
    table = pd.DataFrame(
        {
            "level": ["a", "b", "c"],
            "n": [3, 0, 40],
            "pct": [7.0, 0.0, 93.0],
            "label": ["3 (7%)", "0 (0%)", "40 (93%)"],
        }
    )
    out, count = suppress(table, Disclosure(["n"], {"n": ["pct", "label"]}), MIN)
    assert list(out["n"]) == ["<5", 0, 40] and count == 1
    assert out.loc[0, "pct"] == "" and out.loc[0, "label"] == "<5"
    assert out.loc[1, "pct"] == 0.0  # a zero discloses no one


def test_secondary_suppression_within_a_group_that_adds_to_a_total():
    # Levels of one variable add up to its valid n: one hidden level would be total - the rest.
    table = pd.DataFrame(
        {"variable": ["x"] * 3 + ["y"] * 2, "level": list("abcde"), "count": [2, 30, 50, 12, 20]}
    )
    out, _ = suppress(table, Disclosure(["count"], row_groups=["variable"]), MIN)
    x = out[out["variable"] == "x"]
    assert hidden(x["count"]).sum() == 2  # the small cell and the next smallest
    assert hidden(x["count"]).tolist() == [True, True, False]
    assert not hidden(out[out["variable"] == "y"]["count"]).any()


def test_complement_of_a_published_total_is_protected():
    # 'Women 52 of valid n 55' discloses 3 men.
    table = pd.DataFrame(
        {"count": [52, 30], "valid_n": [55, 60], "value": ["52 (95%)", "30 (50%)"]}
    )
    out, _ = suppress(
        table, Disclosure(["count"], {"count": ["value"]}, complement={"count": "valid_n"}), MIN
    )
    assert out["count"].tolist() == ["<5", 30] and out.loc[0, "value"] == "<5"


def test_responder_breakdown_of_a_tiny_subgroup_cannot_be_recovered():
    table = pd.DataFrame(
        {
            "level": ["small", "large"],
            "responders": [8, 60],
            "non_responders": [3, 40],
            "could_not_improve": [0, 6],
            "missing": [2, 20],
            "n": [11, 106],
            "pct": [72.7, 56.6],
            "ci_low_pct": [43.4, 47.1],
            "ci_high_pct": [90.3, 65.7],
            "patients_in_level": [13, 126],
        }
    )
    out, _ = suppress(table, TABLE_RULES["responder_subgroups"], MIN)
    small = out.iloc[0]
    counts = ["responders", "non_responders", "could_not_improve", "missing"]
    # At least two non-zero cells hidden, and n and the rate too (n - responders would reveal them).
    assert sum(hidden(pd.Series([small[c] for c in counts]))) >= 2
    assert small["n"] == "" and small["pct"] == "" and small["ci_low_pct"] == ""
    # What is left cannot pin down a hidden cell: patients_in_level minus the shown counts is a
    # sum of at least two hidden non-zero cells.
    shown = sum(int(small[c]) for c in counts if not hidden(pd.Series([small[c]])).iat[0])
    assert int(small["patients_in_level"]) - shown == 3 + 2  # non_responders + missing, both hidden
    large = out.iloc[1]
    assert not hidden(pd.Series([large[c] for c in counts])).any() and large["pct"] == 56.6


def test_every_published_table_with_counts_has_a_rule():
    assert {
        "baseline",
        "interventions",
        "intervention_combinations",
        "responders",
        "responder_subgroups",
        "responder_stability",
        "threshold_sweep",
    } <= set(TABLE_RULES)


SETTINGS = {
    "study": {"synthetic": False},
    "disclosure": {"min_cell": MIN},
    "outcomes": {"pain": {"label": "Pain", "mcid": {"absolute": 2}}},
    "occasions": [{"name": "start", "label": "Start"}, {"name": "end", "label": "End"}],
}


def small_sweep() -> pd.DataFrame:
    """Two points of a threshold sweep; 3 of 50 reach the second threshold (a small cell)."""
    return pd.DataFrame(
        {
            "outcome": ["pain"] * 2,
            "occasion": ["end"] * 2,
            "scale": ["absolute"] * 2,
            "threshold": [1, 2],
            "reaching": [40, 3],
            "n": [50, 50],
            "pct": [80.0, 6.0],
            "ci_low_pct": [67.0, 2.0],
            "ci_high_pct": [89.0, 16.0],
        }
    )


def test_read_protected_suppresses_as_publish_and_says_so(tmp_path):
    sweep = small_sweep()
    halves = [tmp_path / "a.csv", tmp_path / "b.csv"]  # a table made in parts
    write_csv(sweep.iloc[:1], halves[0], ["made by a test"])
    write_csv(sweep.iloc[1:], halves[1], ["made by a test"])
    table, notes, count = read_protected([str(p) for p in halves], "threshold_sweep", MIN)
    whole = pd.concat([read_csv(p) for p in halves], ignore_index=True)
    expected, expected_count = suppress(whole, TABLE_RULES["threshold_sweep"], MIN)
    pd.testing.assert_frame_equal(table, expected)
    assert count == expected_count >= 1 and hidden(table["reaching"]).tolist() == [False, True]
    assert notes[0] == "made by a test" and f"{count} cells suppressed" in notes[1]
    write_csv(sweep, tmp_path / "lmm.csv", ["estimates"])
    table, notes, count = read_protected(str(tmp_path / "lmm.csv"), "lmm", MIN)
    assert count is None and notes == ["estimates"] and table["reaching"].tolist() == [40, 3]


def test_figures_with_counts_are_drawn_from_protected_tables(tmp_path, monkeypatch):
    """Figures drawn outside publish get the tables after disclosure control: a suppressed
    share is not drawn, a suppressed count reaches the bar chart as '<5'."""
    from cohort import figures
    from cohort.stages.interventions import draw_intervention_figures
    from cohort.stages.responders import draw_sweep_figure

    drawn = {}

    def capture(name):
        def draw(table, *args):
            drawn[name] = table
            return figures.placeholder("test", "")

        return draw

    monkeypatch.setattr(figures, "threshold_sweep_figure", capture("sweep"))
    monkeypatch.setattr(figures, "category_bars", capture("bars"))
    monkeypatch.setattr(figures, "cooccurrence_heatmap", capture("heatmap"))
    sweep = small_sweep()
    write_csv(sweep, tmp_path / "pain.csv")
    draw_sweep_figure([str(tmp_path / "pain.csv")], SETTINGS, str(tmp_path / "sweep.png"))
    assert drawn["sweep"]["pct"].isna().tolist() == [False, True]
    categories = pd.DataFrame(
        {"category": ["a", "b"], "patients_n": [2, 38], "patients_pct": [5.0, 95.0], "N": 40}
    )
    matrix = pd.DataFrame({"category": ["a", "b"], "1": [2, 1], "2": [1, 38]})
    out = {"categories_figure": tmp_path / "i.png", "cooccurrence_figure": tmp_path / "c.png"}
    draw_intervention_figures(categories, matrix, SETTINGS, out)
    assert hidden(drawn["bars"]["patients_n"]).tolist() == [True, True]  # + its complement
    assert hidden(drawn["heatmap"]["1"]).tolist() == [True, True]


def test_change_figure_shows_no_individual_change_and_no_small_group():
    """results/ holds aggregates: the change figure draws boxes, not the patients' changes, and
    no box for a group below min_cell (its n reads <5, as in the published outcomes table)."""
    import numpy as np

    from cohort import figures

    small = np.array([1.5, 2.5, 3.5])
    changes = {("pain", "end"): np.arange(40.0), ("pain", "late"): small}
    fig = figures.change_distributions(
        changes, {"pain": "Pain"}, {"end": "End", "late": "Late"}, "caption", MIN
    )
    ax = fig.axes[0]
    assert not ax.collections  # no scatter of individual values
    assert [t.get_text() for t in ax.get_xticklabels()] == ["End\n(n = 40)", "Late\n(n = <5)"]
    drawn = np.concatenate([np.asarray(line.get_ydata(), dtype=float) for line in ax.lines])
    assert not np.isin(small, drawn).any()
    assert {9.75, 19.5, 29.25} <= set(drawn)  # the large group's quartiles are drawn


def test_trajectory_figure_labels_n_as_the_outcomes_table_publishes_it():
    """Rule outcomes draws the trajectories from its level rows after the outcomes table's rule:
    an occasion measured in fewer than min_cell patients reads n = <5 under its point."""
    from cohort import figures
    from cohort.disclosure import protect

    levels = pd.DataFrame(
        {
            "outcome": ["pain", "pain"],
            "label": ["Pain", "Pain"],
            "occasion": ["start", "end"],
            "n": [40, 3],
            "median": [6.0, 4.0],
            "q1": [5.0, 3.0],
            "q3": [7.0, 5.0],
        }
    )
    protected, count = protect(levels, "outcomes", MIN)
    fig = figures.trajectories(protected, {"start": "Start", "end": "End"}, {"pain": [0, 10]}, "")
    labels = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert count == 1 and labels == ["Start\n(n = 40)", "End\n(n = <5)"]
