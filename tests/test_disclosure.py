"""Disclosure control (cohort.disclosure): one suppression pattern over all tables, markers that
say what they hide, statistics of small groups, models, curves, rounding; checked by the
independent attacker of tests/disclosure_attack.py where counts relate across tables."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from cohort.core.config import validate_config
from cohort.core.settings import McidRule
from cohort.disclosure import (
    SECONDARY,
    SMALL_GROUP,
    Context,
    DisclosureError,
    DisclosureSettings,
    protect_tables,
)

MIN = 5
SETTINGS = DisclosureSettings(min_cell=MIN)
PAIN = {"pain": McidRule(absolute=2, percent=None)}


def responders_table(
    r: int, nr: int, cni: int, miss: int, outcome="pain", occasion="end"
) -> pd.DataFrame:
    """responders.csv rows of one outcome and occasion, under both denominators."""
    n = r + nr + cni
    total = n + miss
    rows = []
    for denominator, d in (
        ("available cases", n),
        ("all in analysis set, missing = non-responder", total),
    ):
        rows.append(
            {
                "outcome": outcome,
                "occasion": occasion,
                "denominator": denominator,
                "responders": r,
                "n": d,
                "pct": 100 * r / d,
                "ci_low_pct": 1.0,
                "ci_high_pct": 2.0,
                "non_responders": nr,
                "could_not_improve": cni,
                "missing": miss,
                "N": total,
            }
        )
    return pd.DataFrame(rows)


def flow_table(n: int) -> pd.DataFrame:
    return pd.DataFrame(
        {"order": [1, 2], "kind": ["stage", "stage"], "key": ["referred", "analysis_set"],
         "label": ["Referred", "Analysis set"], "n": [n, n]}
    )  # fmt: skip


def protect(tables, n, settings=SETTINGS, mcid=PAIN):
    return protect_tables(tables, settings, Context(n_analysis=n, mcid=mcid))


def test_markers_say_what_they_hide():
    """<5 for a count below min_cell, [c] for a cell hidden to protect it (never '<5' on a
    count of 40), and the rate computed from them hidden with them."""
    out, reports, _ = protect(
        {"flow": flow_table(100), "responders": responders_table(50, 40, 3, 7)}, 100
    )
    row = out["responders"].iloc[0]
    assert row["could_not_improve"] == "<5"
    hidden = [c for c in ("responders", "non_responders", "missing") if row[c] == SECONDARY]
    assert len(hidden) == 1  # one more cell of the breakdown, marked as protecting another
    assert reports["responders"].primary == 2 and reports["responders"].secondary == 2  # both rows
    if hidden == ["responders"]:
        assert row["pct"] == SECONDARY


def test_the_issues_leak_is_closed_across_tables():
    """At min_cell 10, could-not-improve = 9 hidden in responders.csv was recovered as
    n - responders - non-responders from responders_vs_paper.csv: now the same counts carry
    the same suppression wherever they are printed, and the hidden cell's range stays wide."""
    settings = DisclosureSettings(min_cell=10)
    rates = responders_table(132, 101, 9, 32, outcome="health", occasion="discharge")
    vs_paper = pd.DataFrame(
        {"outcome": ["health"], "label": ["Health"], "occasion": ["discharge"], "paper_pct": [50],
         "this_run_pct": [54.5], "ci_low_pct": [48.2], "ci_high_pct": [60.7], "responders": [132],
         "n": [242], "paper_within_ci": [True], "rule": ["improvement >= 10"]}
    )  # fmt: skip
    out, _, _ = protect(
        {"flow": flow_table(274), "responders": rates, "responders_vs_paper": vs_paper},
        274,
        settings,
        {"health": {"absolute": 10, "percent": None}},
    )
    row = out["responders"].iloc[0]
    shown = {
        c: row[c] for c in ("responders", "non_responders", "could_not_improve", "missing", "n")
    }
    assert shown["could_not_improve"] == "<10"
    # Whatever is shown of responders, non-responders and n, the hidden cells keep a range.
    published = out["responders_vs_paper"].iloc[0]
    numbers = [
        v for v in (*shown.values(), published["responders"], published["n"]) if isinstance(v, int)
    ]
    assert str(published["n"]) == str(shown["n"]) and str(published["responders"]) == str(
        shown["responders"]
    )
    assert not (
        {"responders", "non_responders", "n"} <= {k for k, v in shown.items() if isinstance(v, int)}
    )
    assert numbers  # something is still published


def test_statistics_of_a_small_group_are_hidden_not_only_its_count():
    baseline = pd.DataFrame(
        {"variable": ["age", "bmi"], "label": ["Age", "BMI"], "level": ["", ""],
         "statistic": ["mean ± SD", "mean ± SD"], "value": ["44 ± 12.7", "31 ± 2.0"],
         "valid_n": [40, 3], "n": [40, 40], "mean": [44.0, 31.0], "sd": [12.7, 2.0],
         "min": [18, 29], "max": [76, 33], "median": [math.nan] * 2, "q1": [math.nan] * 2,
         "q3": [math.nan] * 2, "count": [math.nan] * 2, "pct": [math.nan] * 2}
    )  # fmt: skip
    out, reports, _ = protect({"flow": flow_table(40), "baseline": baseline}, 40)
    table = out["baseline"]
    assert table.loc[1, "mean"] == SMALL_GROUP and table.loc[1, "sd"] == SMALL_GROUP
    assert table.loc[1, "value"] == SMALL_GROUP and table.loc[0, "value"] == "44 ± 12.7"
    # Min and max are single patients' values: not published unless a study allows them.
    assert "min" not in table.columns and "max" not in table.columns
    allowed, _, _ = protect(
        {"flow": flow_table(40), "baseline": baseline},
        40,
        DisclosureSettings(MIN, allow_min_max=True),
    )
    assert allowed["baseline"]["min"].tolist()[0] == 18
    assert "Min and max are published" in DisclosureSettings(MIN, allow_min_max=True).footer()


def test_a_model_of_few_patients_or_events_is_not_published_and_says_why():
    predictors = pd.DataFrame(
        {"outcome": ["pain"] * 2, "occasion": ["end"] * 2, "analysis": ["complete case"] * 2,
         "N": [30, 30], "events": [3, 3], "method": ["logistic"] * 2, "term": ["age", "sex"],
         "log_or": [0.1, 0.2], "se": [0.1, 0.1], "odds_ratio": [1.1, 1.2], "ci_low": [0.9, 1.0],
         "ci_high": [1.3, 1.4], "p_value": [0.3, 0.2], "parameters": [3, 3], "epv": [1.0, 1.0]}
    )  # fmt: skip
    lmm = pd.DataFrame(
        {"outcome": ["pain"] * 3, "label": ["Pain"] * 3, "patients": [8, 8, 8],
         "observations": [14, 14, 14], "term": ["Intercept", "age", "variance: residual"],
         "estimate": [5.0, 0.1, 1.0], "se": [1.0, 0.1, 0.1], "ci_low": [3.0, 0.0, 0.8],
         "ci_high": [7.0, 0.2, 1.2], "p_value": [0.01, 0.3, math.nan],
         "section": ["fixed effect or variance"] * 3, "occasion": [math.nan] * 3,
         "estimated_mean": [math.nan] * 3, "observed_n": [math.nan] * 3}
    )  # fmt: skip
    out, reports, _ = protect({"flow": flow_table(40), "predictors": predictors, "lmm": lmm}, 40)
    table = out["predictors"]
    assert (table["odds_ratio"] == SMALL_GROUP).all() and (table["ci_low"] == SMALL_GROUP).all()
    assert "with or without the event" in table["disclosure"].iat[0]
    assert (table["events"] == "<5").all()
    # 14 observations, 2 fixed effects + 2 variances: 10 residual df is the least published.
    assert out["lmm"]["disclosure"].iat[0] == "" and out["lmm"]["estimate"].iat[0] == 5.0
    fewer = lmm.assign(observations=13)
    out, _, _ = protect({"flow": flow_table(40), "lmm": fewer}, 40)
    assert "residual degrees of freedom" in out["lmm"]["disclosure"].iat[0]
    assert (out["lmm"]["estimate"] == SMALL_GROUP).all()


def test_threshold_sweep_publishes_only_steps_of_at_least_min_cell():
    reaching = [50, 49, 47, 40, 38, 30, 29, 10, 8, 2]
    sweep = pd.DataFrame(
        {"outcome": "pain", "occasion": "end", "scale": "absolute", "threshold": range(10),
         "reaching": reaching, "n": 60, "pct": [100 * r / 60 for r in reaching],
         "ci_low_pct": 1.0, "ci_high_pct": 2.0}
    )  # fmt: skip
    out, reports, _ = protect({"flow": flow_table(60), "threshold_sweep": sweep}, 60, mcid={})
    shown = out["threshold_sweep"]
    values = [int(v) for v in shown["reaching"]]
    assert values == [50, 40, 30, 10]  # 2 reaching the last threshold is below min_cell
    assert all(a - b >= MIN for a, b in zip(values, values[1:], strict=False))
    assert reports["threshold_sweep"].other["thresholds merged into neighbours"] == 6


def test_rounding_recomputes_percentages_and_wilson_intervals_from_rounded_counts():
    settings = DisclosureSettings(min_cell=MIN, rounding=5)
    out, _, _ = protect(
        {"flow": flow_table(101), "responders": responders_table(52, 38, 6, 5)}, 101, settings
    )
    row = out["responders"].iloc[0]
    assert (row["responders"], row["non_responders"], row["could_not_improve"]) == (50, 40, 5)
    assert row["n"] == 95 and row["pct"] == pytest.approx(100 * 50 / 95)
    from cohort.analysis.responders import wilson_interval

    low, high = wilson_interval(50, 95, 0.95)
    assert (row["ci_low_pct"], row["ci_high_pct"]) == pytest.approx((100 * low, 100 * high))
    assert "rounded to the nearest 5" in settings.footer()


def test_zeros_are_disclosive_only_when_declared():
    table = responders_table(60, 40, 0, 10)
    plain, _, _ = protect({"flow": flow_table(110), "responders": table}, 110)
    assert plain["responders"]["could_not_improve"].iat[0] == 0
    strict, _, _ = protect(
        {"flow": flow_table(110), "responders": table},
        110,
        DisclosureSettings(MIN, zeros_disclosive=True),
    )
    assert strict["responders"]["could_not_improve"].iat[0] == "<5"


def test_a_table_without_a_rule_stops_publish_naming_it():
    with pytest.raises(DisclosureError, match="no disclosure rule for table.*new_table"):
        protect({"flow": flow_table(10), "new_table": pd.DataFrame({"n": [3]})}, 10)


def test_min_cell_below_5_needs_an_acknowledgment(config):
    from cohort.core.config import read_yaml
    from cohort.core.errors import ConfigError

    schema = read_yaml("config/config.schema.yaml")
    low = {**config, "disclosure": {**config["disclosure"], "min_cell": 3}}
    with pytest.raises(ConfigError, match="acknowledge_min_cell_below_5"):
        validate_config(low, schema)
    low["disclosure"]["acknowledge_min_cell_below_5"] = True
    validate_config(low, schema)
    assert "min_cell = 3" in DisclosureSettings(3).footer()


def test_subgroup_levels_add_up_to_the_whole_so_one_small_level_hides_a_rectangle(tmp_path):
    """A level of 4 patients: its breakdown is hidden, and enough of the other levels and of
    the overall counts that no cell follows from the sums (checked by the attacker)."""
    from cohort.io.outputs import write_csv

    from .disclosure_attack import exposed

    overall = responders_table(60, 50, 6, 24)
    levels = []
    for level, (r, nr, cni, miss) in {
        "a": (2, 1, 0, 1),
        "b": (30, 25, 3, 12),
        "c": (28, 24, 3, 11),
    }.items():
        row = responders_table(r, nr, cni, miss).iloc[[0]].assign(subgroup="x", level=level)
        levels.append(row.rename(columns={"N": "patients_in_level"}))
    subgroups = pd.concat(levels, ignore_index=True)
    out, _, _ = protect(
        {"flow": flow_table(140), "responders": overall, "responder_subgroups": subgroups}, 140
    )
    small = out["responder_subgroups"].iloc[0]
    assert all(
        small[c] in ("<5", SECONDARY, 0)
        for c in (
            "responders",
            "non_responders",  # with the could-not-improve (folded: not printed apart)
            "missing",
            "patients_in_level",
            "n",
        )
    )
    assert small["pct"] in (SMALL_GROUP, SECONDARY)
    assert "could_not_improve" not in out["responder_subgroups"].columns
    for name, table in out.items():
        write_csv(table, tmp_path / "tables" / f"{name}.csv")
    assert exposed(tmp_path, MIN, PAIN) == []


def test_midpoint_rounding_is_opensafelys_and_the_report_states_the_residual_risk():
    """Midpoint 6 rounding: ceiling(x / 6) * 6 - 3 for x > 0 (0 stays 0), so 1-6 print as 3,
    7-12 as 9; nearest rounding: halves up."""
    from cohort.disclosure.protect import round_count

    assert [round_count(x, 6, "midpoint") for x in (0, 1, 6, 7, 12, 13)] == [0, 3, 3, 9, 9, 15]
    assert [round_count(x, 5) for x in (0, 2, 3, 7, 8, 52)] == [0, 0, 5, 5, 10, 50]
    settings = DisclosureSettings(min_cell=MIN, rounding=6, rounding_method="midpoint")
    out, _, _ = protect(
        {"flow": flow_table(101), "responders": responders_table(52, 38, 6, 5)}, 101, settings
    )
    row = out["responders"].iloc[0]
    assert (row["responders"], row["non_responders"], row["could_not_improve"]) == (51, 39, 3)
    assert row["pct"] == pytest.approx(100 * 51 / row["n"])
    assert "midpoint 6 rounding" in settings.footer()
    assert "1 to 6" in settings.residual_risk()
    assert "exact" in DisclosureSettings(min_cell=MIN).residual_risk()


@pytest.mark.parametrize("base, method", [(5, "nearest"), (6, "midpoint"), (10, "nearest")])
def test_the_attackers_rounding_bins_are_the_rounding_functions_inverse(base, method):
    """tests/disclosure_attack.rounding_bin (written from the definitions) against
    cohort.disclosure.protect.round_count: every count lies in the bin of what it prints as,
    and the bin holds exactly the counts that print so."""
    from cohort.disclosure.protect import round_count

    from .disclosure_attack import rounding_bin

    for shown in sorted({round_count(x, base, method) for x in range(1, 200)} - {0}):
        low, high = rounding_bin(shown, base, method)
        inside = [x for x in range(0, 220) if round_count(x, base, method) == shown]
        assert inside == list(range(int(low), int(high) + 1)), shown


def test_the_attacker_finds_what_primary_suppression_alone_leaves_open(tmp_path):
    """The attacker's power (its shortcuts only skip LPs for cells that feasible points already
    show to vary and to reach min_cell): the same tables with only the small level's counts
    hidden and every other count shown, so that each hidden count is its level's total minus
    the others; the attacker pins them."""
    from cohort.io.outputs import write_csv

    from .disclosure_attack import exposed

    overall = responders_table(60, 50, 6, 24)
    levels = []
    for level, (r, nr, cni, miss) in {"a": (2, 1, 0, 1), "b": (30, 25, 3, 12), "c": (28, 24, 3, 11)}.items():  # fmt: skip
        row = responders_table(r, nr, cni, miss).iloc[[0]].assign(subgroup="x", level=level)
        levels.append(row.rename(columns={"N": "patients_in_level"}))
    subgroups = pd.concat(levels, ignore_index=True)
    out, _, _ = protect(
        {"flow": flow_table(140), "responders": overall, "responder_subgroups": subgroups}, 140
    )
    shown = subgroups.assign(non_responders=subgroups["non_responders"] + subgroups["could_not_improve"])  # fmt: skip
    table = out["responder_subgroups"]  # as printed: could-not-improve among non-responders
    for column in ("responders", "non_responders", "missing", "n", "patients_in_level"):
        table[column] = table[column].astype(object)
        table.loc[1:, column] = shown.loc[1:, column].astype(object)  # the other levels shown
    for name, table in out.items():
        write_csv(table, tmp_path / "tables" / f"{name}.csv")
    found = exposed(tmp_path, MIN, PAIN)
    assert any("responder_subgroups.csv row 1" in f for f in found), found
