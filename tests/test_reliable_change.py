"""The reliable-change indices beside Jacobson-Truax's (cohort.analysis.significance.RciRule and
SlopeRule): against the output R's clinicalsignificance documents on its own example
(claus_2020, HAMD, r = 0.80: tests/fixtures/README.md), against that package's formulas
(calc_rci.R) transcribed here for the methods its documentation shows no output of, and the HLM
index against lme4's output on the same data; and the naming of definitions that classify
alike."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cohort.analysis.responders import CATEGORIES, COULD_NOT_IMPROVE, MISSING, RESPONDER
from cohort.analysis.significance import definitions_table, slope_values, thresholds
from cohort.analysis.significance_rates import (
    classify_definitions,
    definition_codes,
    definition_rates,
    identical_definitions,
    imputed_rates,
    slope_codes,
)
from cohort.core.settings import Definition, McidRule, Outcome, Reliability, SignificanceSettings
from cohort.disclosure.protect import _publish_same_as

FIXTURE = Path(__file__).parent / "fixtures" / "claus_2020_hamd.csv"
HAMD = Outcome("hamd", "HAMD-17", (0, 52), "lower", mcid=McidRule(5.0, None, reference="t"))
OCCASIONS = ["1", "4"]


def claus_pairs() -> pd.DataFrame:
    """The 40 patients with both measurements (the package analyses complete pairs)."""
    data = pd.read_csv(FIXTURE).dropna(subset=["hamd_1", "hamd_4"])
    return data.assign(patient_id=data["id"].astype(str))


def found(method: str, patients: pd.DataFrame, r_post: float | None = None):
    settings = SignificanceSettings(
        definitions=(Definition(method, method, method, "test"),),
        reliability={"hamd": Reliability(0.80, "Claus et al. example", r_post=r_post)},
    )
    return next(
        t
        for t in thresholds(patients, {"hamd": HAMD}, OCCASIONS, settings, 0.95)
        if t.definition.name == method
    )


def categories(method: str, r_post: float | None = None) -> tuple[int, int, int]:
    """(improved, unchanged, deteriorated) as the package counts them: deteriorated by the same
    index beyond the critical value towards worse."""
    patients = claus_pairs()
    t = found(method, patients, r_post)
    pre, post = patients["hamd_1"].to_numpy(float), patients["hamd_4"].to_numpy(float)
    codes = definition_codes(pre, post, HAMD, t, "4")
    improved = int((codes == CATEGORIES.index(RESPONDER)).sum())
    if t.rci is not None:
        worse = int((t.rci.index(pre, post, "4", "lower") < -t.rci.critical).sum())
    else:  # Jacobson-Truax: the change beyond S_diff x 1.96 towards worse
        worse = int((post - pre > t.rule.absolute).sum())
    return improved, len(patients) - improved - worse, worse


@pytest.mark.parametrize(
    "method, documented", [("reliable_change", (29, 10, 1)), ("rci_ha", (32, 7, 1))]
)
def test_documented_categories_of_clinicalsignificance_on_claus_2020(method, documented):
    assert categories(method) == documented


@pytest.mark.parametrize(
    "method, r_post, documented",
    [("rci_gln", None, (29, 10, 1)), ("rci_en", None, (32, 5, 3)), ("rci_hll", None, (12, 16, 12)),
     ("rci_nk", 0.5, (28, 11, 1))],
)  # fmt: skip
def test_clinicalsignificance_test_snapshots_on_claus_2020(method, r_post, documented):
    """The package's own test snapshots (tests/testthat/_snaps/cs_distribution.md, version
    2.1.0.9000: claus_2020, hamd, pre = 1, post = 4, reliability 0.8; NK with
    reliability_post = 0.5)."""
    assert categories(method, r_post) == documented


def transcribed(method: str, pre: np.ndarray, post: np.ndarray, r: float = 0.80) -> np.ndarray:
    """calc_rci.R's index (change = post - pre; direction -1: lower is better)."""
    m1, s1, m2 = pre.mean(), pre.std(ddof=1), post.mean()
    se_meas, se_pred = s1 * np.sqrt(1 - r), s1 * np.sqrt(1 - r**2)
    if method == "rci_gln":
        rci = ((post - m1) - r * (pre - m1)) / se_pred
    elif method == "rci_hll":
        rci = ((post - m2) - r * (pre - m1)) / se_pred
    elif method == "rci_en":
        rci = (post - (r * (pre - m1) + m1)) / se_meas
    else:  # rci_nk, reliability_post = r
        rci = (post - (r * (pre - m1) + m1)) / np.sqrt(r**2 * s1**2 * (1 - r) + s1**2 * (1 - r))
    return -rci


@pytest.mark.parametrize("method", ["rci_gln", "rci_en", "rci_hll", "rci_nk"])
def test_the_other_indices_are_the_packages_formulas(method):
    patients = claus_pairs()
    t = found(method, patients)
    pre, post = patients["hamd_1"].to_numpy(float), patients["hamd_4"].to_numpy(float)
    ours = t.rci.index(pre, post, "4", "lower")
    assert ours == pytest.approx(transcribed(method, pre, post), rel=1e-12)
    codes = definition_codes(pre, post, HAMD, t, "4")
    assert (codes == CATEGORIES.index(RESPONDER)).sum() == (ours > 1.96).sum()


def test_gln_and_hll_agree_when_the_means_agree_and_en_includes_gln():
    """HLL is GLN with the follow-up's mean in place of the start's; EN's denominator (SEM) is
    smaller than GLN's (SE of prediction) for r < 1, so its improvers include GLN's."""
    rng = np.random.default_rng(4)
    pre = rng.normal(25, 5, 300)
    post = pre - rng.normal(0, 4, 300)
    post = post - post.mean() + pre.mean()  # equal means
    patients = pd.DataFrame({"patient_id": range(300), "hamd_1": pre, "hamd_4": post})
    gln, hll, en = (found(m, patients) for m in ("rci_gln", "rci_hll", "rci_en"))
    assert gln.rci.index(pre, post, "4", "lower") == pytest.approx(
        hll.rci.index(pre, post, "4", "lower")
    )
    improved = {
        m: definition_codes(pre, post, HAMD, t, "4") == CATEGORIES.index(RESPONDER)
        for m, t in (("gln", gln), ("en", en))
    }
    assert (improved["gln"] <= improved["en"]).all() and improved["en"].sum() > improved[
        "gln"
    ].sum()


def test_who_could_not_improve_and_the_table_names_formula_and_source():
    """Could-not-improve: even the scale's best follow-up would not be beyond the critical
    value (HLL at a start of 0 and a follow-up of 0: (M2 - r M1) over the SE of prediction,
    negative here, the follow-up's mean being below r M1); the definitions table gives the
    formula with its source."""
    patients = claus_pairs()
    t = found("rci_hll", patients)
    best = np.array([0.0])
    assert t.rci.index(best, best, "4", "lower")[0] < t.rci.critical  # the precondition
    assert CATEGORIES[definition_codes(best, best, HAMD, t, "4")[0]] == COULD_NOT_IMPROVE
    table = definitions_table([found("rci_en", patients)], {"hamd": HAMD}).iloc[0]
    assert "Edwards" in table["formula"] and table["rule"].startswith("reliable change (EN index)")
    assert table["status"] == "defined"


# --- The HLM index: each patient's own slope over all four measurements -------------------------
OCCASIONS_ALL = ["1", "2", "3", "4"]
HLM = Definition("rci_hlm", "rci_hlm", "RCI, HLM slope", "test")


def hlm_threshold(patients: pd.DataFrame, occasions=OCCASIONS_ALL):
    settings = SignificanceSettings(definitions=(HLM,))
    return next(
        t
        for t in thresholds(patients, {"hamd": HAMD}, occasions, settings, 0.95)
        if t.definition.name == "rci_hlm"
    )


def claus_all() -> pd.DataFrame:
    data = pd.read_csv(FIXTURE)
    return data.assign(patient_id=data["id"].astype(str))


def test_hlm_index_on_claus_2020_is_lme4s_slope_over_its_sd():
    """Atkins et al.'s index, each patient's own slope (lme4's fixed slope + conditional mode)
    over its conditional SD, computed from lme4's output (tests/fixtures/hlm_reference.csv),
    classifies the 40 patients measured at the first and the last occasion as ours does."""
    patients = claus_all()
    t = hlm_threshold(patients)
    assert t.slopes is not None and t.basis["slope_n"] == 40
    reference = pd.read_csv(Path(__file__).parent / "fixtures" / "hlm_reference.csv")
    reference = reference[reference["set"] == "three_or_more"]
    z = (reference["fixed_slope"] + reference["slope_mode"]) / reference["slope_sd"]
    codes = slope_codes(slope_values(patients, HAMD, OCCASIONS_ALL), HAMD, t.slopes)
    names = pd.Series(np.array(CATEGORIES, dtype=object)[codes], index=patients["id"])
    assert (names != MISSING).sum() == 40
    assert (names == RESPONDER).sum() == (z < -1.96).sum() == 33
    improved = set(reference.loc[(z < -1.96).to_numpy(), "id"].astype(int))
    assert set(names.index[names == RESPONDER]) == improved


def test_hlm_index_needs_three_occasions_and_is_published_at_the_last():
    patients = claus_all()
    two = hlm_threshold(patients, ["1", "4"])
    assert not two.defined and "three or more" in two.reason
    t = hlm_threshold(patients)
    outcomes = {"hamd": HAMD}
    classified = classify_definitions(patients, outcomes, OCCASIONS_ALL, [t])
    assert set(classified["occasion"]) == {"4"}
    imputed = imputed_rates([patients.fillna(20.0)] * 2, outcomes, OCCASIONS_ALL, [t], "exclude")
    rates = definition_rates(classified, [t], OCCASIONS_ALL, "exclude", 43, 0.95, imputed)
    earlier = rates[rates["occasion"] != "4"]
    assert (
        len(earlier) == 2 and earlier["method"].str.startswith("not defined at this occasion").all()
    )
    last = rates[(rates["occasion"] == "4") & (rates["analysis"] == "available cases")].iloc[0]
    assert (last["n"], last["responders"]) == (40, 33)
    assert (
        last["rule"] == "reliable change (HLM slope over all occasions) beyond 1.96 towards better"
    )
    table = definitions_table([t], outcomes).iloc[0]
    assert "Atkins" in table["formula"] and table["slope_n"] == 40 and table["slope_singular"]


def test_a_definition_classifying_as_an_earlier_one_names_it():
    """same_as: every patient in the same category under both, at that outcome and occasion;
    the first definition so named is the earliest (the primary first)."""
    rows = []
    for definition, categories in (
        ("mcid", [RESPONDER, "non-responder", MISSING]),
        ("sem", [RESPONDER, "non-responder", MISSING]),
        ("half_sd", [RESPONDER, RESPONDER, MISSING]),
        ("mdc95", [RESPONDER, "non-responder", MISSING]),
    ):
        for pid, category in enumerate(categories):
            rows.append((f"p{pid}", definition, "pain", "end", category))
    classified = pd.DataFrame(rows, columns=["patient_id", "definition", "outcome", "occasion", "category"])  # fmt: skip
    assert identical_definitions(classified) == {
        ("sem", "pain", "end"): "mcid",
        ("mdc95", "pain", "end"): "mcid",
    }


def test_same_as_is_kept_only_where_both_counts_are_published():
    """Naming a definition whose count is hidden would give it away by the other's."""
    rates = pd.DataFrame(
        {
            "definition": ["mcid", "sem", "mdc95", "half_sd"],
            "outcome": "pain", "occasion": "end", "analysis": "available cases",
            "same_as": ["", "mcid", "half_sd", "mcid"],
            "responders": ["12", "12", "9", "[c]"],
        }
    )  # fmt: skip
    _publish_same_as(rates)
    assert rates["same_as"].tolist() == ["", "mcid", "", ""]
