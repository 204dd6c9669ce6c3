"""Definitions of clinical significance: each threshold against a hand calculation, a truth
table per definition, the ROC analysis against scipy's Mann-Whitney U, a brute-force DeLong
variance and a simulation of its coverage, Cohen's kappa against the Fleiss-Cohen-Everitt
formula written out, the rates table against responders.csv's function, and the agreement
table's cells."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from cohort.analysis.responders import CATEGORIES, classify_all, rate_rows, threshold_sweep
from cohort.analysis.roc import delong_se, roc_auc, youden_cutoff
from cohort.analysis.significance import (
    anchor_statistics,
    definitions_table,
    jacobson_truax_cutoff,
    thresholds,
)
from cohort.analysis.significance_rates import (
    agreement,
    classification_blocks,
    classify_definitions,
    definition_codes,
    definition_rates,
    imputed_rates,
    kappa_2x2,
)
from cohort.core.settings import (
    AnchorSettings,
    Definition,
    McidRule,
    Norms,
    Outcome,
    Reliability,
    SignificanceSettings,
)

OCCASIONS = ["start", "end"]
PAIN = Outcome("pain", "Pain", (0, 10), "lower", mcid=McidRule(2.0, None, reference="Farrar 2001"))
# Start 2, 4, 6, 8, 10: mean 6, SD sqrt(40 / 4) = sqrt(10). With r = 0.9 the SEM is
# sqrt(10) x sqrt(0.1) = 1 exactly, the MDC95 1.96 x sqrt(2) = 2.7719.
PATIENTS = pd.DataFrame(
    {
        "patient_id": ["p1", "p2", "p3", "p4", "p5"],
        "pain_start": [2.0, 4, 6, 8, 10],
        "pain_end": [2.0, 1, 3, 2, 9],  # improvements 0, 3, 3, 6, 1
    }
)


def definition(method: str, **kwargs) -> Definition:
    return Definition(method, method, method, "test", **kwargs)


SETTINGS = SignificanceSettings(
    definitions=(
        definition("half_sd"),
        definition("sem"),
        definition("mdc95"),
        definition("reliable_change"),
        definition("percent", percent=30),
        definition("absolute", absolute={"pain": 4}),
        Definition("csc_b", "clinically_significant", "CSC b", "test", cutoff="b"),
        Definition("csc_c", "clinically_significant", "CSC c", "test", cutoff="c"),
    ),
    reliability={"pain": Reliability(0.9, "test")},
    norms={"pain": Norms(1.0, 1.0, "test")},
)


def found_by_name(settings=SETTINGS, patients=PATIENTS):
    return {
        t.definition.name: t
        for t in thresholds(patients, {"pain": PAIN}, OCCASIONS, settings, 0.95)
    }


def test_thresholds_by_hand():
    found = found_by_name()
    sd = math.sqrt(10)
    assert found["mcid"].primary and found["mcid"].rule.absolute == 2
    assert found["half_sd"].rule.absolute == pytest.approx(sd / 2)
    assert found["sem"].rule.absolute == pytest.approx(1.0)
    assert found["mdc95"].rule.absolute == pytest.approx(1.96 * math.sqrt(2))
    assert not found["mdc95"].rule.strict
    assert found["reliable_change"].rule.absolute == pytest.approx(1.96 * math.sqrt(2))
    assert found["reliable_change"].rule.strict  # |RCI| > 1.96
    assert found["percent"].rule.percent == 30 and found["percent"].rule.absolute is None
    assert found["absolute"].rule.absolute == 4
    # Jacobson-Truax, lower is better: b = norm mean + 2 norm SD; c weighted by the SDs.
    assert found["csc_b"].cutoff == pytest.approx(3.0)
    assert found["csc_c"].cutoff == pytest.approx((sd * 1 + 1 * 6) / (sd + 1))
    assert found["half_sd"].basis["baseline_sd"] == pytest.approx(sd)
    assert found["sem"].basis["s_diff"] == pytest.approx(math.sqrt(2))


def test_cutoff_a_and_direction():
    # a: 2 SD beyond the patients' mean towards better; higher is better flips every sign.
    assert jacobson_truax_cutoff("a", 50, 10, 80, 5, "higher") == 70
    assert jacobson_truax_cutoff("a", 50, 10, 80, 5, "lower") == 30
    assert jacobson_truax_cutoff("b", 50, 10, 80, 5, "higher") == 70  # 80 - 2 x 5
    assert jacobson_truax_cutoff("c", 50, 10, 80, 5, "higher") == pytest.approx(
        (10 * 80 + 5 * 50) / 15
    )


# Each definition's category for p1..p5 (improvements 0, 3, 3, 6, 1; starts 2, 4, 6, 8, 10).
TRUTH = {
    "mcid": ["non_responder", "responder", "responder", "responder", "non_responder"],
    "half_sd": ["non_responder", "responder", "responder", "responder", "non_responder"],
    "sem": ["non_responder", "responder", "responder", "responder", "responder"],  # 1 >= 1
    # p1 has 2 points of room, less than 2.77: could not improve
    "mdc95": ["could_not_improve", "responder", "responder", "responder", "non_responder"],
    "reliable_change": [
        "could_not_improve",
        "responder",
        "responder",
        "responder",
        "non_responder",
    ],
    "percent": [
        "non_responder",
        "responder",
        "responder",
        "responder",
        "non_responder",
    ],  # 10% < 30%
    "absolute": [  # 4 points: p1 has 2 of room, p2 exactly 4 (reachable, improved 3)
        "could_not_improve",
        "non_responder",
        "non_responder",
        "responder",
        "non_responder",
    ],
    # b = 3: p3 ends at 3, not beyond; p1 starts beyond it (nothing to cross)
    "csc_b": ["could_not_improve", "responder", "non_responder", "responder", "non_responder"],
    # c = 2.20: p4 ends at 2, beyond; p1 starts at 2, already beyond
    "csc_c": ["could_not_improve", "responder", "non_responder", "responder", "non_responder"],
}


@pytest.mark.parametrize("name", list(TRUTH))
def test_truth_table_of_each_definition(name):
    t = found_by_name()[name]
    codes = definition_codes(
        PATIENTS["pain_start"].to_numpy(), PATIENTS["pain_end"].to_numpy(), PAIN, t
    )
    assert [CATEGORIES[c] for c in codes] == TRUTH[name]


def test_reliable_change_index_written_out():
    """RCI = (x_start - x_end) / S_diff for lower-is-better, reliable when above 1.96: the same
    patients as the rule's threshold."""
    s_diff = math.sqrt(2) * 1.0
    rci = (PATIENTS["pain_start"] - PATIENTS["pain_end"]) / s_diff
    t = found_by_name()["reliable_change"]
    codes = definition_codes(
        PATIENTS["pain_start"].to_numpy(), PATIENTS["pain_end"].to_numpy(), PAIN, t
    )
    responder = np.array([CATEGORIES[c] == "responder" for c in codes])
    assert list(responder) == list(rci > 1.96)


def test_exactly_at_the_reliable_change_threshold_is_not_reliable():
    t = found_by_name()["reliable_change"]
    at = 1.96 * math.sqrt(2)
    codes = definition_codes(np.array([8.0]), np.array([8.0 - at]), PAIN, t)
    assert CATEGORIES[codes[0]] == "non_responder"
    mdc = found_by_name()["mdc95"]  # the MDC95 is "at least"
    assert (
        CATEGORIES[definition_codes(np.array([8.0]), np.array([8.0 - at]), PAIN, mdc)[0]]
        == "responder"
    )


def test_missing_inputs_give_reasons_not_errors():
    bare = SignificanceSettings(
        definitions=(
            definition("sem"),
            Definition("csc_c", "clinically_significant", "c", "test", cutoff="c"),
            definition("absolute", absolute={"other": 3}),
            definition("anchor_roc"),
        )
    )
    found = found_by_name(bare)
    assert "no reliability for pain" in found["sem"].reason
    assert "no reliability" in found["csc_c"].reason
    assert "no threshold given for pain" in found["absolute"].reason
    assert "no anchor" in found["anchor_roc"].reason
    table = definitions_table(list(found.values()), {"pain": PAIN})
    assert (
        table.set_index("definition").loc["sem", "status"].startswith("not defined: no reliability")
    )
    with_r = SignificanceSettings(
        definitions=bare.definitions[1:2], reliability={"pain": Reliability(0.9, "t")}
    )
    assert "needs normative values" in found_by_name(with_r)["csc_c"].reason


def test_a_cutoff_outside_the_scale_is_a_definition_nobody_can_meet():
    """Issue 29: cut-off a below 0 on a 0-10 scale was tabulated as 0 responders and pooled as
    0.5 / n; now the definition is not defined here, with the reason, and has no rates."""
    settings = SignificanceSettings(
        definitions=(Definition("csc_a", "clinically_significant", "a", "test", cutoff="a"),),
        reliability={"pain": Reliability(0.9, "t")},
    )
    found = list(found_by_name(settings).values())
    assert not found[1].defined
    assert found[1].basis["cutoff"] == pytest.approx(6 - 2 * math.sqrt(10))  # below 0
    assert "lies outside the scale's range [0, 10]" in found[1].reason
    status = definitions_table(found, {"pain": PAIN}).set_index("definition").loc["csc_a", "status"]
    assert status.startswith("not defined: the cut-off") and "no patient can cross it" in status


# --- ROC against an anchor -------------------------------------------------------------------
SCORES = np.array([0, 1, 2, 2, 3, 4, 5, 6], dtype=float)
POSITIVE = np.array([0, 0, 1, 0, 1, 1, 0, 1], dtype=bool)


def test_auc_by_hand_and_by_mann_whitney():
    # Positives 2, 3, 4, 6 over negatives 0, 1, 2, 5: 2.5 + 3 + 3 + 4 = 12.5 of 16 pairs.
    assert roc_auc(SCORES, POSITIVE) == pytest.approx(12.5 / 16)
    u = stats.mannwhitneyu(SCORES[POSITIVE], SCORES[~POSITIVE]).statistic
    assert roc_auc(SCORES, POSITIVE) == pytest.approx(u / 16)


def test_youden_cutoff_by_hand():
    # J at t = 2: sensitivity 4/4, specificity 2/4 -> 0.5; at t = 3: 3/4 + 3/4 - 1 = 0.5; the
    # lowest of the tie is chosen.
    assert youden_cutoff(SCORES, POSITIVE) == (2.0, 1.0, 0.5)


def delong_brute_force(scores, positive):
    x, y = scores[positive], scores[~positive]
    psi = (x[:, None] > y[None, :]) + 0.5 * (x[:, None] == y[None, :])
    v10, v01 = psi.mean(axis=1), psi.mean(axis=0)
    return math.sqrt(v10.var(ddof=1) / len(x) + v01.var(ddof=1) / len(y))


def test_delong_se_by_hand_and_by_brute_force():
    # Placements: V10 = 0.625, 0.75, 0.75, 1; V01 = 1, 1, 0.875, 0.25:
    # var(V10)/4 + var(V01)/4 = 0.0247396/4 + 0.1289063/4 = 0.0384115.
    assert delong_se(SCORES, POSITIVE) ** 2 == pytest.approx(0.0384114583, abs=1e-9)
    rng = np.random.default_rng(3)
    scores = rng.integers(0, 12, 80).astype(float)  # many ties
    positive = rng.random(80) < 0.4
    assert delong_se(scores, positive) == pytest.approx(delong_brute_force(scores, positive))


def test_delong_interval_covers_at_its_level():
    """400 samples of 60 positives and 60 negatives, scores normal with means 0.8 SD apart
    (true AUC = Phi(0.8 / sqrt(2)) = 0.714): the 95% Wald interval covers in 92-98% of them
    (binomial SD of the coverage 1.1 points at 400 samples)."""
    rng = np.random.default_rng(11)
    truth = stats.norm.cdf(0.8 / math.sqrt(2))
    z = stats.norm.ppf(0.975)
    covered = 0
    for _ in range(400):
        scores = np.concatenate([rng.normal(0.8, 1, 60), rng.normal(0, 1, 60)])
        positive = np.repeat([True, False], 60)
        auc, se = roc_auc(scores, positive), delong_se(scores, positive)
        covered += abs(auc - truth) <= z * se
    assert 0.92 <= covered / 400 <= 0.98


def test_anchor_statistics_by_hand():
    anchor = np.array([4, 5, 3, 3, 2, 1, 4, 1], dtype=float)  # PGIC: 1-3 improved, 3 minimal
    found = anchor_statistics(SCORES, anchor, [3], [1, 2, 3], 0.95)
    # Improved (1-3): scores 2, 2, 3, 4, 6 vs 0, 1, 5.
    positive = np.isin(anchor, [1, 2, 3])
    assert found["anchor_improved_n"] == 5 and found["anchor_not_improved_n"] == 3
    assert found["auc"] == pytest.approx(roc_auc(SCORES, positive))
    assert found["anchor_minimal_n"] == 2 and found["anchor_minimal_mean"] == pytest.approx(2.0)
    assert found["roc_cutoff"] == youden_cutoff(SCORES, positive)[0]
    half = stats.t.ppf(0.975, 1) * 0 / math.sqrt(2)  # both minimal scores are 2: SD 0
    assert found["anchor_minimal_ci_low"] == pytest.approx(2.0 - half)
    # The group-level difference, Welch's CI by hand: improved 2, 2, 3, 4, 6 vs 0, 1, 5
    a, b = np.array([2, 2, 3, 4, 6.0]), np.array([0, 1, 5.0])
    va, vb = a.var(ddof=1) / 5, b.var(ddof=1) / 3
    df = (va + vb) ** 2 / (va**2 / 4 + vb**2 / 2)  # Welch-Satterthwaite
    half = stats.t.ppf(0.975, df) * math.sqrt(va + vb)
    assert found["anchor_group_difference"] == pytest.approx(3.4 - 2.0)
    assert (found["anchor_group_ci_low"], found["anchor_group_ci_high"]) == pytest.approx(
        (1.4 - half, 1.4 + half)
    )


def test_anchor_definitions_from_a_patient_table():
    patients = pd.DataFrame(
        {
            "patient_id": [f"p{i}" for i in range(8)],
            "pain_start": 8.0,
            "pain_end": 8.0 - SCORES,
            "anchor_end": [4, 5, 3, 3, 2, 1, 4, 1],
        }
    )
    settings = SignificanceSettings(
        definitions=(definition("anchor_mean_change"), definition("anchor_roc")),
        anchor=AnchorSettings("end", (3.0,), (1.0, 2.0, 3.0), "PGIC"),
    )
    found = found_by_name(settings, patients)
    assert found["anchor_mean_change"].rule.absolute == pytest.approx(2.0)
    assert found["anchor_roc"].rule.absolute == 2.0
    assert found["anchor_roc"].basis["auc"] == pytest.approx(
        roc_auc(SCORES, np.isin(patients["anchor_end"], [1, 2, 3]))
    )


# --- Kappa, agreement, rates -----------------------------------------------------------------
def fleiss_cohen_everitt_se(table: np.ndarray) -> float:
    """The large-sample SE of kappa (Fleiss, Cohen & Everitt 1969, eq. 13), written out."""
    n = table.sum()
    p = table / n
    rows, cols = p.sum(axis=1), p.sum(axis=0)
    po, pe = np.trace(p), rows @ cols
    first = sum(p[i, i] * (1 - pe - (rows[i] + cols[i]) * (1 - po)) ** 2 for i in range(2))
    second = (1 - po) ** 2 * sum(
        p[i, j] * (cols[i] + rows[j]) ** 2 for i in range(2) for j in range(2) if i != j
    )
    third = (po * pe - 2 * pe + po) ** 2
    return math.sqrt((first + second - third) / (n * (1 - pe) ** 4))


def test_kappa_by_hand():
    # po = 35/50 = 0.7, pe = (25 x 30 + 25 x 20) / 2500 = 0.5: kappa = 0.4.
    kappa, low, high = kappa_2x2(20, 5, 10, 15, 0.95)
    assert kappa == pytest.approx(0.4)
    se = fleiss_cohen_everitt_se(np.array([[20, 5], [10, 15]], dtype=float))
    assert (low, high) == pytest.approx((0.4 - 1.959964 * se, 0.4 + 1.959964 * se), abs=1e-6)


def test_kappa_undefined_and_perfect():
    assert all(math.isnan(v) for v in kappa_2x2(10, 0, 0, 0, 0.95))  # everyone alike
    kappa, low, high = kappa_2x2(10, 0, 0, 7, 0.95)
    assert kappa == 1.0 and math.isnan(low) and math.isnan(high)


def test_agreement_cells_add_up_and_match_the_definitions():
    found = list(found_by_name().values())
    classified = classify_definitions(PATIENTS, {"pain": PAIN}, OCCASIONS, found)
    table = agreement(classified, 0.95).set_index(["first", "second"])
    row = table.loc[("mcid", "sem")]  # mcid: p2, p3, p4; sem: p2, p3, p4, p5
    assert (row["n"], row["both"], row["first_only"], row["second_only"], row["neither"]) == (
        5,
        3,
        0,
        1,
        1,
    )
    assert row["agreement_pct"] == 80
    assert row["kappa"] == pytest.approx(kappa_2x2(3, 0, 1, 1, 0.95)[0])
    # could-not-improve counts as not improved: mdc95 (p1 CNI) vs mcid agree on p1
    row = table.loc[("mcid", "mdc95")]
    assert (row["both"], row["neither"]) == (3, 2)


def test_blocks_and_agreement_equal_pandas_groupby_and_pivot():
    """classification_blocks against pandas' groupby(sort=False) and the agreement table against
    one computed from pandas' pivot: on the table as classify_definitions writes it (each
    combination one run of rows) and on the same rows shuffled, as strings, with one
    definition's row of one patient dropped (the general path: a sort, a patient union)."""
    found = list(found_by_name().values())
    written = classify_definitions(PATIENTS, {"pain": PAIN}, OCCASIONS, found)
    shuffled = written.astype(str).sample(frac=1.0, random_state=3).iloc[1:]
    keys = ["definition", "outcome", "occasion"]
    for table in (written, shuffled):
        expected = {k: list(g.index) for k, g in table.groupby(keys, sort=False, observed=True)}
        blocks = classification_blocks(table.reset_index(drop=True), keys)
        assert list(blocks) == list(expected)
        for key, rows in blocks.items():
            assert list(table.index[rows]) == expected[key]
        ours = agreement(table.reset_index(drop=True), 0.95)
        for _, row in ours.iterrows():
            group = table[(table["outcome"] == row["outcome"]) & (table["occasion"] == row["occasion"])]  # fmt: skip
            wide = group.pivot(index="patient_id", columns="definition", values="category")
            measured = wide[group["definition"].iat[0]].astype(object).ne("missing")
            x = wide.loc[measured, row["first"]].astype(object).eq("responder")
            y = wide.loc[measured, row["second"]].astype(object).eq("responder")
            assert (row["n"], row["both"], row["first_only"], row["second_only"], row["neither"]) == (
                int(measured.sum()), int((x & y).sum()), int((x & ~y).sum()),
                int((~x & y).sum()), int((~x & ~y).sum()),
            )  # fmt: skip


def test_rates_of_the_primary_definition_are_responders_csv():
    found = list(found_by_name().values())
    classified = classify_definitions(PATIENTS, {"pain": PAIN}, OCCASIONS, found)
    imputed = imputed_rates([PATIENTS] * 3, {"pain": PAIN}, OCCASIONS, found, "non_responder")
    rates = definition_rates(classified, found, OCCASIONS, "non_responder", 5, 0.95, imputed)
    mcid = rates[rates["definition"] == "mcid"].set_index("analysis")
    reference = classify_all(PATIENTS, {"pain": PAIN}, OCCASIONS)
    for row, analysis in zip(
        rate_rows(reference["category"], "non_responder", 5, 0.95),
        ("available cases", "all in analysis set, missing = non-responder"),
        strict=True,
    ):
        for column in ("responders", "n", "pct", "ci_low_pct", "ci_high_pct"):
            assert mcid.loc[analysis, column] == pytest.approx(row[column])
    # Three identical completed sets: no between-imputation variance, so Rubin's df and fmi
    # are not defined: the row says so and publishes no pooled rate (issue 29).
    pooled = rates[rates["analysis"] == "multiple imputation"].set_index("definition")
    assert np.isnan(pooled.loc["sem", "pct"])
    assert "the imputations do not differ" in pooled.loc["sem", "method"]


def test_rates_of_an_undefined_definition_say_why():
    settings = SignificanceSettings(definitions=(definition("sem"),))
    found = list(found_by_name(settings).values())
    classified = classify_definitions(PATIENTS, {"pain": PAIN}, OCCASIONS, found)
    rates = definition_rates(classified, found, OCCASIONS, "exclude", 5, 0.95, (0, {}))
    sem = rates[rates["definition"] == "sem"]
    assert len(sem) == 1 and sem["method"].iat[0].startswith("not defined: no reliability")


def test_sweep_in_sd_units_is_the_absolute_sweep_over_the_sd():
    sweep = threshold_sweep(PATIENTS, PAIN, OCCASIONS, 11, 0.95)
    absolute = sweep[sweep["scale"] == "absolute"]
    assert np.allclose(absolute["threshold_sd"], absolute["threshold"] / math.sqrt(10), atol=1e-6)
    assert sweep.loc[sweep["scale"] == "percent", "threshold_sd"].isna().all()


# --- The anchor, from a generated extract --------------------------------------------------------
def test_an_extract_with_an_anchor_gets_anchor_based_definitions(tmp_path, config, codebook):
    """The generator's --anchor column (PGIC), declared in the study's contract and as
    derived.anchor, read, cleaned and derived as the rules do: the config check accepts it,
    anchor_<occasion> is in the patient table, and the anchor-based thresholds are estimated
    (the PGIC is drawn from the outcomes' improvement, so it discriminates), published with the
    AUC and its CI, and used as definitions in the rates and the agreement."""
    import copy

    import yaml

    from cohort.core.settings import Analysis
    from cohort.io.contract import config_contract_problems, load_contract, patient_columns
    from cohort.io.reading import read_extract
    from cohort.io.synthetic import ANCHOR_COLUMN, ANCHOR_CONTRACT
    from cohort.workflow.stages.clean import clean, derive

    from .conftest import ROOT, make_extract

    spec = yaml.safe_load((ROOT / "config/contract.yaml").read_text())
    spec["tables"]["assessments"]["columns"][ANCHOR_COLUMN] = ANCHOR_CONTRACT
    (tmp_path / "contract.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    study = copy.deepcopy(config)
    study["derived"]["anchor"] = {"column": ANCHOR_COLUMN}
    study["clinical_significance"]["anchor"] = {
        "occasion": "discharge", "minimal": [3], "improved": [1, 2, 3], "reference": "PGIC",
    }  # fmt: skip
    contract = load_contract(tmp_path / "contract.yaml", study)
    assert config_contract_problems(study, contract) == []
    assert "anchor_discharge" in patient_columns(study, contract)
    bare = copy.deepcopy(study)
    bare["derived"].pop("anchor")
    assert any("derived.anchor.column" in p for p in config_contract_problems(bare, contract))

    make_extract(tmp_path / "extract", load_contract(ROOT / "config/contract.yaml", config), codebook,
                 n=300, seed=9, anchor=True, fault_rate=0)  # fmt: skip
    raw = read_extract(tmp_path / "extract", contract)
    patients, _, _ = derive(clean(raw, contract, study).tables, study, list(codebook))
    analysis = patients[patients["analysis_set"]].reset_index(drop=True)
    settings = Analysis.from_config(study)
    occasions = settings.occasion_names
    found = thresholds(analysis, settings.outcomes, occasions, settings.significance, 0.95)
    anchor = [t for t in found if t.definition.method in ("anchor_mean_change", "anchor_roc")]
    assert len(anchor) == 6 and all(t.defined for t in anchor), [t.reason for t in anchor]
    for t in anchor:
        basis = t.basis
        assert basis["anchor_improved_n"] + basis["anchor_not_improved_n"] == basis["anchor_n"]
        assert 0.6 < basis["auc"] <= 1 and basis["auc_ci_low"] < basis["auc"] < basis["auc_ci_high"]
        assert t.rule.absolute > 0
    classified = classify_definitions(analysis, settings.outcomes, occasions, found)
    rates = definition_rates(
        classified, found, occasions, "non_responder", len(analysis), 0.95, (0, {})
    )
    roc = rates[(rates["definition"] == "anchor_roc") & (rates["analysis"] == "available cases")]
    assert len(roc) == 6 and roc["n"].gt(0).all()
    pairs = agreement(classified, 0.95)
    assert ((pairs["first"] == "mcid") & (pairs["second"] == "anchor_roc")).sum() == 6


def test_summary_gives_the_range_of_rates_over_the_definitions():
    """summary.md: the primary rate, the lowest and highest published rate under the other
    definitions (by label), and how many are shown, withheld and not defined."""
    from cohort.core.settings import Analysis
    from cohort.publish.summary import definition_sensitivity

    rates = pd.DataFrame(
        {
            "definition": ["mcid", "half_sd", "sem", "mdc95", "anchor_roc"],
            "outcome": "pain",
            "occasion": "end",
            "analysis": ["available cases"] * 4 + [""],
            "responders": [10, 12, 20, "", ""],
            "n": [40.0, 40, 40, 40, np.nan],
            "pct": [25, 30, 50, "", ""],
            "ci_low_pct": [14, 18, 35, "", ""],
            "ci_high_pct": [40, 45, 65, "", ""],
            "method": [
                "Wilson",
                "Wilson",
                "Wilson",
                "not published: close",
                "not defined: no anchor",
            ],
        }
    )
    definitions = pd.DataFrame(
        {"definition": ["mcid", "half_sd", "sem"], "label": ["MCID", "Half an SD", "1 SEM"]}
    )
    config = Analysis.from_config(
        {
            "occasions": [{"name": "start", "label": "Start"}, {"name": "end", "label": "End"}],
            "outcomes": {
                "pain": {
                    "label": "Pain",
                    "source": {"column": "nprs"},
                    "range": [0, 10],
                    "better": "lower",
                }
            },
        }
    )
    lines = definition_sensitivity(rates, definitions, config)
    row = lines[-1]
    assert row.startswith("| Pain | End | 25% [14, 40] (10/40) |")
    assert "30% [18, 45] (Half an SD)" in row and "50% [35, 65] (1 SEM)" in row
    assert row.endswith("| 2 / 1 / 1 |")


# --- Degenerate estimates (issue 29) ---------------------------------------------------------
@pytest.mark.parametrize("k, n", [(0, 244), (207, 207), (0, 1), (3, 10), (50, 100)])
def test_clopper_pearson_agrees_with_scipys_exact_interval(k, n):
    from scipy.stats import binomtest

    from cohort.analysis.responders import clopper_pearson_interval

    ci = binomtest(k, n).proportion_ci(0.95, method="exact")
    assert clopper_pearson_interval(k, n, 0.95) == pytest.approx((ci.low, ci.high), abs=1e-12)


def test_zero_or_all_in_every_imputation_is_named_not_pooled():
    from cohort.analysis.imputation import degenerate_pooling, pooled_proportion

    for rates, says in (([0.0] * 5, "no responder in any imputation (0 of 274)"),
                        ([1.0] * 5, "every patient a responder in every imputation (274 of 274)")):  # fmt: skip
        _, _, _, pooled = pooled_proportion(np.array(rates), 274)
        assert says in degenerate_pooling(np.array(rates), 274, pooled)
    same = np.array([0.3] * 5)
    _, _, _, pooled = pooled_proportion(same, 274)
    assert "the imputations do not differ" in degenerate_pooling(same, 274, pooled)
    varied = np.array([0.30, 0.31, 0.29, 0.32, 0.30])
    _, _, _, pooled = pooled_proportion(varied, 274)
    assert degenerate_pooling(varied, 274, pooled) == ""
    assert np.isfinite(pooled.df) and 0 < pooled.fmi < 1
