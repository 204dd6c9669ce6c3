"""The reliable-change indices beside Jacobson-Truax's (cohort.significance.RciRule): against
the output R's clinicalsignificance documents on its own example (claus_2020, HAMD, r = 0.80:
tests/fixtures/README.md), and against that package's formulas (calc_rci.R) transcribed here
for the methods its documentation shows no output of."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cohort.responders import CATEGORIES, COULD_NOT_IMPROVE, RESPONDER
from cohort.settings import Definition, McidRule, Outcome, Reliability, SignificanceSettings
from cohort.significance import definition_codes, definitions_table, thresholds

FIXTURE = Path(__file__).parent / "fixtures" / "claus_2020_hamd.csv"
HAMD = Outcome("hamd", "HAMD-17", (0, 52), "lower", mcid=McidRule(5.0, None, reference="t"))
OCCASIONS = ["1", "4"]


def claus_pairs() -> pd.DataFrame:
    """The 40 patients with both measurements (the package analyses complete pairs)."""
    data = pd.read_csv(FIXTURE).dropna(subset=["hamd_1", "hamd_4"])
    return data.assign(patient_id=data["id"].astype(str))


def found(method: str, patients: pd.DataFrame):
    settings = SignificanceSettings(
        definitions=(Definition(method, method, method, "test"),),
        reliability={"hamd": Reliability(0.80, "Claus et al. example")},
    )
    return next(
        t
        for t in thresholds(patients, {"hamd": HAMD}, OCCASIONS, settings, 0.95)
        if t.definition.name == method
    )


def categories(method: str) -> tuple[int, int, int]:
    """(improved, unchanged, deteriorated) as the package counts them: deteriorated by the same
    index beyond the critical value towards worse."""
    patients = claus_pairs()
    t = found(method, patients)
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
