"""Least-loss secondary suppression (cohort.disclosure.optimal): optimal against brute force on
a small register, never worse than the greedy pattern, the headline of a large cohort published
when a handful of patients could not improve, and every pattern checked by the independent
attacker of tests/disclosure_attack.py."""

from __future__ import annotations

import itertools
from dataclasses import replace

import pandas as pd

from cohort.disclosure import (
    N_KEY,
    SECONDARY,
    Context,
    DisclosureSettings,
    Register,
    audit,
    least_cost_pattern,
    protect_tables,
    suppression_pattern,
)
from cohort.disclosure.optimal import loss_weight
from cohort.io.outputs import write_csv

from .disclosure_attack import exposed
from .test_disclosure import MIN, PAIN, flow_table, responders_table

OPTIMAL = DisclosureSettings(min_cell=MIN)
GREEDY = replace(OPTIMAL, method="greedy")


def directions_table(
    r: int, unchanged: int, deteriorated: int, cni: int, miss: int
) -> pd.DataFrame:
    """responder_directions.csv: the responders' non-responders split in two."""
    n = r + unchanged + deteriorated + cni
    return pd.DataFrame(
        [{"outcome": "pain", "occasion": "end", "N": n + miss, "improved": r,
          "unchanged": unchanged, "deteriorated": deteriorated, "could_not_improve": cni,
          "missing": miss, "n": n, "improved_pct": 100 * r / n}]
    )  # fmt: skip


def subgroup_rows(levels: dict[str, tuple[int, int, int, int]]) -> pd.DataFrame:
    rows = []
    for level, (r, nr, cni, miss) in levels.items():
        row = responders_table(r, nr, cni, miss).iloc[[0]].assign(subgroup="sex", level=level)
        rows.append(row.rename(columns={"N": "patients_in_level"}))
    return pd.concat(rows, ignore_index=True)


def registry_tables() -> tuple[dict[str, pd.DataFrame], int]:
    """A registry of 44,714 patients of whom 2 could not improve (1 woman, 1 man)."""
    r, unchanged, deteriorated, cni, miss = 41_073, 1_500, 817, 2, 1_322
    n = r + unchanged + deteriorated + cni + miss
    tables = {
        "flow": flow_table(n),
        "responders": responders_table(r, unchanged + deteriorated, cni, miss),
        "responder_directions": directions_table(r, unchanged, deteriorated, cni, miss),
        "responder_subgroups": subgroup_rows(
            {"F": (24_000, 1_400, 1, 800), "M": (17_073, 917, 1, 522)}
        ),
    }
    return tables, n


def test_a_large_cohort_publishes_its_headline_rate_when_two_patients_could_not_improve(tmp_path):
    tables, n = registry_tables()
    out, _, pattern = protect_tables(tables, OPTIMAL, Context(n_analysis=n, mcid=PAIN))
    assert pattern.method == "optimal"
    responders = out["responders"]
    assert responders.loc[0, "responders"] == 41_073
    assert responders.loc[0, "n"] == 41_073 + 2_317 + 2
    assert float(responders.loc[0, "pct"]) > 94
    assert responders.loc[0, "could_not_improve"] == f"<{MIN}"
    for name, table in out.items():
        write_csv(table, tmp_path / "tables" / f"{name}.csv")
    assert exposed(tmp_path, MIN, {"pain": {"absolute": 2}}) == []


def test_the_optimal_pattern_never_costs_more_than_the_greedy_one():
    tables, n = registry_tables()
    ctx = Context(n_analysis=n, mcid=PAIN)
    costs = {}
    for settings in (OPTIMAL, GREEDY):
        _, reports, pattern = protect_tables(tables, settings, ctx)
        costs[settings.method] = sum(1 for why in pattern.hidden.values() if why == "secondary")
        assert pattern.method == settings.method
    assert costs["optimal"] <= costs["greedy"]


def small_register() -> Register:
    """Responders (3, primary), non-responders, could-not-improve and missing of 60 patients,
    with a second table splitting the non-responders: a handful of published counts, so that
    every pattern can be tried."""
    reg = Register()
    reg.fixed.add(N_KEY)
    reg.value(N_KEY, 60, "N")
    keys = {"r": 3, "nr": 40, "cni": 7, "miss": 10, "unchanged": 25, "deteriorated": 15}
    for name, value in keys.items():
        reg.cell("t", 0, name, (name,), value)
    reg.implied(("measured",), 50)
    reg.cell("t", 0, "measured", ("measured",), 50)
    reg.equation([("r",), ("nr",), ("cni",)], ("measured",))
    reg.equation([("measured",), ("miss",)], N_KEY)
    reg.equation([("unchanged",), ("deteriorated",)], ("nr",))
    return reg


def test_the_optimal_pattern_is_the_cheapest_safe_one_by_brute_force():
    reg = small_register()
    cells = {k: 1 for k in reg.published}
    choices = sorted(reg.published - reg.fixed - {("r",)}, key=str)
    best = None
    for size in range(len(choices) + 1):
        for extra in itertools.combinations(choices, size):
            hidden = {("r",), *extra}
            if not audit(reg, hidden, set(), MIN, targets={("r",)}):
                cost = sum(loss_weight(k, cells[k]) for k in extra)
                best = cost if best is None else min(best, cost)
    pattern = least_cost_pattern(reg, OPTIMAL)
    found = sum(loss_weight(k, 1) for k, why in pattern.hidden.items() if why == "secondary")
    assert pattern.method == "optimal"
    assert best is not None and found == best
    assert not audit(reg, set(pattern.hidden), set(), MIN, targets={("r",)})


def test_a_time_limit_too_short_falls_back_to_the_greedy_pattern_and_says_why():
    reg = small_register()
    pattern = least_cost_pattern(reg, replace(OPTIMAL, time_limit=1e-9))
    assert pattern.method == "greedy"
    assert "time limit" in pattern.detail
    assert pattern.hidden == suppression_pattern(reg, OPTIMAL).hidden


def test_table_2_levels_stay_published_but_one_when_a_single_value_is_missing(tmp_path):
    """Five levels of 78, 68, 55, 49 and 23 patients and one missing value: hiding the valid n
    and one level protects the missing count; the greedy pattern hid all five."""
    counts = {"neck": 78, "none": 68, "back": 55, "lower": 49, "upper": 23}
    valid = sum(counts.values())
    baseline = pd.DataFrame(
        [{"variable": "location", "label": "Location", "level": level, "statistic": "n (%)",
          "count": c, "pct": 100 * c / valid, "value": f"{c}", "valid_n": valid, "n": valid + 1}
         for level, c in counts.items()]
    )  # fmt: skip
    out, _, _ = protect_tables(
        {"flow": flow_table(valid + 1), "baseline": baseline},
        OPTIMAL,
        Context(n_analysis=valid + 1, mcid=PAIN),
    )
    hidden = out["baseline"]["count"].isin([SECONDARY, f"<{MIN}"])
    assert hidden.sum() == 1
    for name, table in out.items():
        write_csv(table, tmp_path / "tables" / f"{name}.csv")
    assert exposed(tmp_path, MIN, {"pain": {"absolute": 2}}) == []


def test_the_release_request_has_one_acro_record_per_table_with_its_hidden_cells():
    """The fields acro.record.load_records reads (version, results: uid, status, type,
    properties, files with name and sdc, outcome as DataFrame.to_json, command, summary,
    comments, exception, timestamp, fair); statuses and cell positions from the markers.
    (tests/test_release_acro.py loads the committed results/ with acro 1.0.2's load_records.)"""
    from cohort.disclosure.release import ACRO_FORMAT_VERSION, release_request, table_loss

    tables, n = registry_tables()
    out, reports, pattern = protect_tables(tables, OPTIMAL, Context(n_analysis=n, mcid=PAIN))
    request = release_request(out, {k: r.rule for k, r in reports.items()}, pattern.detail, OPTIMAL)
    assert request["version"] == ACRO_FORMAT_VERSION
    assert set(request["results"]) == set(out)
    for name, record in request["results"].items():
        uid = f"tables/{name}.csv"
        assert {"uid", "status", "type", "properties", "files", "outcome", "command", "summary",
                "comments", "exception", "timestamp", "fair"} <= set(record)  # fmt: skip
        assert record["uid"] == name and record["files"][0]["name"] == uid
        outcome = pd.DataFrame.from_dict(record["outcome"])
        assert outcome.shape == out[name].shape
        loss = table_loss(out[name], OPTIMAL)
        assert record["status"] == ("review" if loss.hidden else "pass")
        threshold = record["files"][0]["sdc"]["cells"]["threshold"]
        assert len(threshold) == loss.below_threshold
        for row, column in threshold:
            assert out[name].iat[row, column] == f"<{MIN}"
    responders = request["results"]["responders"]
    assert responders["status"] == "review"  # the two could-not-improve are hidden
    assert responders["files"][0]["sdc"]["summary"]["threshold"] == 2
