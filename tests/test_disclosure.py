"""Disclosure control on tiny subgroups: small cells and what derives from them are hidden, and
no hidden cell can be recovered from a published total."""

from __future__ import annotations

import pandas as pd

from cohort.disclosure import TABLE_RULES, Disclosure, suppress

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
