"""Dominance of means (ACRO's NK and p% checks): the evidence the analysis rules write
(tables.dominance_shares), the rules (DisclosureSettings.dominated) against ACRO's formulas
computed here independently, and what publish hides (protect.hide_dominated)."""

import numpy as np
import pandas as pd
import pytest

from cohort.analysis.tables import dominance_shares
from cohort.disclosure import TABLE_RULES, DisclosureSettings
from cohort.disclosure.protect import dominance_evidence, hide_dominated
from cohort.disclosure.register import TableRule
from cohort.disclosure.settings import DOMINATED

ACRO = DisclosureSettings()  # nk_n 2, nk_k 0.9, p_ratio 0.1: acro/default.yaml


def acro_nk(values: np.ndarray, n: int, k: float) -> bool:
    """acro.sdcchecks.check_nk_dominance: top-n sum / sum >= k."""
    s = pd.Series(values)
    return bool(s.nlargest(n, keep="all")[:n].sum() / s.sum() >= k)


def acro_p(values: np.ndarray, p: float) -> bool:
    """acro.sdcchecks.check_ppercent_dominance: (sum - top1 - top2) / top1 < p."""
    s = pd.Series(values)
    top1 = s.max()
    return bool(top1 > 0 and (s.sum() - s.nlargest(2).sum()) / top1 < p)


def test_shares_are_the_two_largest_values_over_the_sum():
    shares = dominance_shares(pd.Series([1.0, 6.0, np.nan, 3.0]))
    assert shares == {
        "dominance_top1_share": 0.6,
        "dominance_top2_share": 0.3,
        "dominance_negative": 0.0,
    }
    assert dominance_shares([0.0, 0.0], "x")["x_top1_share"] == 0.0  # a zero sum: not dominated
    assert dominance_shares([2.0, -1.0])["dominance_negative"] == 1.0


@pytest.mark.parametrize("nk_n", [1, 2])
def test_the_rules_agree_with_acros_formulas(nk_n):
    rng = np.random.default_rng(3)
    settings = DisclosureSettings(nk_n=nk_n)
    flagged = 0
    for _ in range(400):
        n = int(rng.integers(2, 12))
        values = rng.choice([0, 0, 1, 2, 5, 40, 200], n).astype(float)
        if values.sum() == 0:
            continue
        e = dominance_shares(values)
        ours = settings.dominated(e["dominance_top1_share"], e["dominance_top2_share"])
        theirs = acro_nk(values, nk_n, 0.9) or acro_p(values, 0.1)
        assert (ours != "") == theirs, values
        flagged += theirs
    assert 20 < flagged < 380  # both outcomes were tried


def test_a_worked_example_of_each_rule():
    # 100, 50, 10: the two largest are 150 of 160 (94%) -> NK
    assert ACRO.dominated(100 / 160, 50 / 160) == "nk"
    # 10, 9, 5, 6: 19 of 30 (63%); the rest 11, 110% of the largest -> neither
    assert ACRO.dominated(10 / 30, 9 / 30) == ""
    # 10, 9, 0.8: 96% -> NK; at k = 99% the p% rule: the rest 0.8 is 8% of 10 -> p%
    assert ACRO.dominated(10 / 19.8, 9 / 19.8) == "nk"
    assert DisclosureSettings(nk_k=0.99).dominated(10 / 19.8, 9 / 19.8) == "p"
    # the limits themselves: 90% exactly fails NK; a rest of exactly 10% passes p% (200, 40 and
    # 20 more, with NK on the largest alone: 77%). (At ACRO's defaults p% never fails alone:
    # a rest below 10% of the largest leaves the two largest above 90% of the sum.)
    assert ACRO.dominated(0.5, 0.4) == "nk"
    assert DisclosureSettings(nk_n=1).dominated(200 / 260, 40 / 260) == ""
    assert DisclosureSettings(nk_n=1).dominated(200 / 259, 40 / 259) == "p"
    assert DisclosureSettings(dominance=False).dominated(1.0, 0.0) == ""


def table_with(values_per_row: list[list[float]], **columns) -> pd.DataFrame:
    rows = []
    for values in values_per_row:
        v = np.array(values, dtype=float)
        rows.append({"n": len(v), "mean": v.mean(), "sd": v.std(ddof=1), **dominance_shares(v)})
    return pd.DataFrame(rows).assign(**columns)


def test_publish_hides_a_dominated_mean_and_drops_the_evidence():
    table = table_with([[1, 2, 3, 4, 5, 6], [300, 1, 0, 0, 0, 1]])
    out = table.copy()
    rule = TableRule("test", dominance={"dominance": ("mean", "sd")})
    counts = hide_dominated(out, table, rule, ACRO)
    assert list(out.drop(columns=dominance_evidence(out, rule)).columns) == ["n", "mean", "sd"]
    assert out.loc[0, "mean"] == table.loc[0, "mean"]
    assert out.loc[1, "mean"] == DOMINATED and out.loc[1, "sd"] == DOMINATED
    assert counts["means dominated by their largest values (NK, p%): rows"] == 1


def test_arms_of_one_outcome_and_occasion_are_hidden_together():
    """Arms' means add up to the whole's (published in outcomes.csv): one dominated arm alone
    hidden would follow from the other and the whole."""
    table = table_with(
        [[3, 4, 5, 6, 7], [90, 1, 0, 0, 0], [3, 4, 5, 6, 7], [3, 4, 5, 6, 8]],
        outcome=["pain"] * 4,
        occasion=["start", "start", "end", "end"],
        group=["a", "b", "a", "b"],
    )
    table["whole_dominance_top1_share"] = 0.1
    table["whole_dominance_top2_share"] = 0.1
    table["whole_dominance_negative"] = 0.0
    out = table.copy()
    hide_dominated(out, table, TABLE_RULES["group_outcomes"], ACRO)
    assert list(out["mean"].astype(str) == DOMINATED) == [True, True, False, False]
    assert "whole_dominance_top1_share" in dominance_evidence(out, TABLE_RULES["group_outcomes"])


def test_means_of_values_of_both_signs_are_counted_not_judged():
    table = table_with([[-5, 1, 0, 0, 0, 30]])
    out = table.copy()
    counts = hide_dominated(out, table, TABLE_RULES["outcomes"], ACRO)
    assert out.loc[0, "mean"] == table.loc[0, "mean"]
    assert counts["means of values of both signs (dominance not defined)"] == 1


def test_config_null_turns_the_check_off_and_keys_default_to_acros():
    assert DisclosureSettings.from_config({"min_cell": 5, "dominance": None}).dominance is False
    on = DisclosureSettings.from_config(
        {"min_cell": 5, "dominance": {"nk_n": 1, "nk_k": 0.5, "p_ratio": 0.2}}
    )
    assert (on.nk_n, on.nk_k, on.p_ratio, on.dominance) == (1, 0.5, 0.2, True)
    assert DisclosureSettings.from_config({"min_cell": 5}).dominance is True


def test_no_dominance_evidence_reaches_the_committed_results():
    """The shares of the largest values are single patients' values over a sum: never published."""
    from pathlib import Path

    tables = sorted(Path("results/tables").glob("*.csv"))
    assert tables
    for path in tables:
        header = path.read_text(encoding="utf-8").splitlines()[0]
        assert "dominance" not in header, path
