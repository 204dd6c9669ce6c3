"""Clinical significance beyond one MCID: every definition of config `clinical_significance`
beside the primary one (each outcome's `mcid`), its threshold computed from the data where it
is distribution- or anchor-based, the responder rate under each (both denominators and multiple
imputation) and the agreement between definitions (% and Cohen's kappa).

Definitions (improvement is change in the better direction, as in cohort.responders):
- absolute / percent: a fixed threshold in scale units / % of the start value;
- half_sd: 0.5 x SD of the start values (Norman, Sloan & Wyrwich, Med Care 2003;41:582);
- sem: 1 SEM, SEM = SD x sqrt(1 - r) with the test-retest reliability r (Wyrwich et al.,
  J Clin Epidemiol 1999;52:861);
- mdc95: 1.96 x sqrt(2) x SEM, the smallest change beyond measurement error with 95% confidence;
- reliable_change: the Jacobson-Truax reliable change index RCI = improvement / S_diff,
  S_diff = sqrt(2 SEM^2), above 1.96 (Jacobson & Truax, J Consult Clin Psychol 1991;59:12);
  the same threshold as mdc95, strict ("more than");
- clinically_significant: reliable change and a follow-up value beyond the cut-off a (2 SD of
  the start values beyond their mean), b (2 SD of the normative population short of its mean)
  or c (between the two means, weighted by the SDs); patients whose start value is already
  beyond the cut-off cannot cross it (could-not-improve);
- rci_hlm: each patient's own slope over all occasions (the fixed slope plus the patient's
  conditional mode, value ~ occasion number + (occasion number | patient), REML) over its
  conditional SD, beyond 1.96 (Raudenbush & Bryk 2002; Atkins et al., J Consult Clin Psychol
  2005;73:982; cohort.individual_slopes); three or more occasions, published at the last;
- anchor_mean_change: the mean improvement of the patients whose anchor (e.g. a global
  impression of change) says "a little better";
- anchor_roc: the improvement that best separates improved from not improved by the anchor
  (Youden's J), with the area under the ROC curve and its DeLong CI (DeLong et al.,
  Biometrics 1988;44:837).
A data-derived threshold is estimated once, from the analysis set's observed values, and then
used as any fixed one (in every imputed data set too): the definitions table publishes it with
the SD, reliability or anchor it came from.

Hand-written where scipy and statsmodels have no equivalent (Youden's cut-off, DeLong's
variance by midranks, Sun & Xu, IEEE Signal Process Lett 2014;21:1389); Cohen's kappa and its
CI are statsmodels'.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.inter_rater import cohens_kappa

from cohort.distributions import normal_critical
from cohort.frames import frame
from cohort.imputation import degenerate_pooling, pooled_proportion
from cohort.individual_slopes import SlopeModel, fit_slopes
from cohort.responders import (
    CATEGORIES,
    COULD_NOT_IMPROVE,
    MISSING,
    NON_RESPONDER,
    RESPONDER,
    baseline_sd,
    category_codes,
    improvement_scores,
    in_population,
    rate_rows,
    rule_text,
)
from cohort.settings import (
    DISTRIBUTION_METHODS,
    PRIMARY,
    RCI_METHODS,
    RCI_RULE_PREFIX,
    RELIABLE_CHANGE_METHODS,
    SLOPE_METHODS,
    SLOPE_RULE_WORDS,
    Definition,
    McidRule,
    Outcome,
    SignificanceSettings,
)

Z_RELIABLE = 1.96  # the conventional two-sided 95% criterion of the RCI and the MDC95
FORMULAS = {
    "mcid": "the outcome's MCID rule (config outcomes.<name>.mcid)",
    "absolute": "improvement ≥ the threshold (scale units)",
    "percent": "improvement ≥ the threshold in % of the start value",
    "half_sd": "improvement ≥ 0.5 × SD(start)",
    "sem": "improvement ≥ SEM = SD(start) × √(1 - r)",
    "mdc95": "improvement ≥ MDC95 = 1.96 × √2 × SEM",
    "reliable_change": "RCI = improvement / S_diff > 1.96, S_diff = √2 × SEM (Jacobson-Truax)",
    "clinically_significant": "reliable change (RCI > 1.96) and follow-up beyond cut-off {cutoff}",
    "rci_gln": "RCI = ((post - M1) - r (pre - M1)) / (SD1 √(1 - r²)) beyond 1.96 towards better (Gulliksen-Lord-Novick: Gulliksen 1950; Lord & Novick 1968)",
    "rci_en": "RCI = (post - (r (pre - M1) + M1)) / (SD1 √(1 - r)) beyond 1.96 towards better (Edwards-Nunnally: Edwards et al. 1978; Speer 1992)",
    "rci_hll": "RCI = ((post - M2) - r (pre - M1)) / (SD1 √(1 - r²)) beyond 1.96 towards better (Hsu-Linn-Lord: Hsu 1989)",
    "rci_nk": "RCI = (post - (r (pre - M1) + M1)) / √(r² SD1² (1 - r) + SD1² (1 - r_post)) beyond 1.96 towards better, r_post the reliability at follow-up (r where not given) (Nunnally & Kotsch 1983)",
    "rci_ha": "RCI = ((post - pre) r_dd + (M2 - M1)(1 - r_dd)) / (√r_dd √2 SEM) beyond 1.65 towards better, r_dd the reliability of the differences (Hageman & Arrindell 1999)",
    "rci_hlm": "z = (fixed slope + the patient's conditional mode) / its conditional SD beyond 1.96 towards better; value ~ occasion number + (occasion number | patient), REML, fitted on the patients measured at 3 or more occasions (Raudenbush & Bryk 2002; Atkins et al. 2005)",
    "anchor_mean_change": "improvement ≥ mean improvement of the anchor's 'a little better' level",
    "anchor_roc": "improvement ≥ the ROC cut-off maximising Youden's J (sensitivity + specificity - 1) against the anchor",
}
CUTOFF_FORMULAS = {
    "a": "a = mean(start) -/+ 2 SD(start), towards better",
    "b": "b = norm mean +/- 2 norm SD, towards worse",
    "c": "c = (SD(start) x norm mean + norm SD x mean(start)) / (SD(start) + norm SD)",
}


@dataclass(frozen=True)
class RciRule:
    """A reliable-change index other than Jacobson-Truax's (RCI_METHODS), with what it reads:
    the start values' mean and SD (M1, SD1), the reliability r, and per follow-up the observed
    mean and SD there (M2, SD2) and the correlation of start and follow-up (HA)."""

    method: str
    reliability: float
    m_pre: float
    sd_pre: float
    post: dict[str, tuple[float, float, float]]  # occasion -> (M2, SD2, correlation)
    critical: float = Z_RELIABLE
    reliability_post: float | None = None  # NK: the reliability at follow-up (r if None)

    def index(self, pre: np.ndarray, post: np.ndarray, occasion: str, better: str) -> np.ndarray:
        """Each patient's index, positive towards better (clinicalsignificance's calc_rci times
        its direction)."""
        r, m1, s1 = self.reliability, self.m_pre, self.sd_pre
        m2, s2, correlation = self.post[occasion]
        sem = s1 * math.sqrt(1 - r)
        if self.method == "rci_gln":
            rci = ((post - m1) - r * (pre - m1)) / (s1 * math.sqrt(1 - r**2))
        elif self.method == "rci_hll":
            rci = ((post - m2) - r * (pre - m1)) / (s1 * math.sqrt(1 - r**2))
        elif self.method == "rci_en":
            rci = (post - (r * (pre - m1) + m1)) / sem
        elif self.method == "rci_nk":
            r_post = r if self.reliability_post is None else self.reliability_post
            rci = (post - (r * (pre - m1) + m1)) / math.sqrt(
                r**2 * s1**2 * (1 - r) + s1**2 * (1 - r_post)
            )
        else:  # rci_ha
            r_dd = self.difference_reliability(occasion)
            rci = ((post - pre) * r_dd + (m2 - m1) * (1 - r_dd)) / (
                math.sqrt(r_dd) * math.sqrt(2) * sem
            )
        return rci if better == "higher" else -rci

    def difference_reliability(self, occasion: str) -> float:
        """Hageman & Arrindell's reliability of the differences, r_dd."""
        s1, (_, s2, c) = self.sd_pre, self.post[occasion]
        sem2 = s1**2 * (1 - self.reliability)
        r1, r2 = (s1**2 - sem2) / s1**2, (s2**2 - sem2) / s2**2
        return (s1**2 * r1 + s2**2 * r2 - 2 * s1 * s2 * c) / (s1**2 + s2**2 - 2 * s1 * s2 * c)


def rci_rule(
    method: str,
    patients: pd.DataFrame,
    outcome: Outcome,
    occasions: list[str],
    r: float,
    r_post: float | None = None,
) -> RciRule:
    """The index of `method` with its inputs from the analysis set: the start values (as every
    SD-based definition here), and per follow-up the observed values and the start-follow-up
    pairs. (clinicalsignificance takes all of them from the complete pairs.)"""
    start = patients[outcome.column_at(occasions[0])].astype(float)
    post = {}
    for occasion in occasions[1:]:
        follow = patients[outcome.column_at(occasion)].astype(float)
        pairs = pd.concat([start, follow], axis=1).dropna()
        correlation = (
            float(np.corrcoef(pairs.iloc[:, 0], pairs.iloc[:, 1])[0, 1])
            if len(pairs) > 2
            else math.nan
        )
        post[occasion] = (float(follow.mean()), float(follow.std(ddof=1)), correlation)
    return RciRule(
        method, r, float(start.mean()), float(start.std(ddof=1)), post,
        critical=1.65 if method == "rci_ha" else Z_RELIABLE,
        reliability_post=r_post if method == "rci_nk" else None,
    )  # fmt: skip


@dataclass(frozen=True)
class SlopeRule:
    """The HLM index (SLOPE_METHODS): the growth model fitted once on the analysis set's observed
    values (cohort.individual_slopes), over `occasions` numbered 0, 1, 2, ... (equally spaced, as
    clinicalsignificance's examples number them), and published at the last occasion."""

    model: SlopeModel
    occasions: tuple[str, ...]
    critical: float = Z_RELIABLE

    @property
    def occasion(self) -> str:
        return self.occasions[-1]

    def index(self, values: np.ndarray, better: str) -> np.ndarray:
        """Each patient's slope index (patients x occasions in), positive towards better."""
        z = self.model.slope_index(values)
        return z if better == "higher" else -z


def slope_rule(patients: pd.DataFrame, outcome: Outcome, occasions: list[str]) -> SlopeRule:
    """The HLM index of `outcome` from the analysis set (ValueError where it cannot be fitted)."""
    values = slope_values(patients, outcome, occasions)
    model = fit_slopes(values, np.arange(len(occasions), dtype=float), minimum=3)
    return SlopeRule(model, tuple(occasions))


def slope_values(data: pd.DataFrame, outcome: Outcome, occasions: list[str]) -> np.ndarray:
    """The outcome at every occasion, patients x occasions (NaN where not measured)."""
    columns = [outcome.column_at(o) for o in occasions]
    return data[columns].to_numpy(dtype=float, na_value=np.nan)


@dataclass(frozen=True)
class Threshold:
    """A definition made concrete for one outcome: its rule (None when it cannot be defined,
    with the reason), the Jacobson-Truax cut-off where it has one, and what it was computed from."""

    definition: Definition
    outcome: str
    primary: bool
    rule: McidRule | None
    cutoff: float | None = None
    reason: str = ""
    basis: dict[str, Any] = field(default_factory=dict)
    rci: RciRule | None = None  # an index of RCI_METHODS instead of a threshold on the change
    slopes: SlopeRule | None = None  # the index of SLOPE_METHODS, over all occasions

    @property
    def defined(self) -> bool:
        return self.rule is not None or self.rci is not None or self.slopes is not None


# --- ROC analysis against an anchor ------------------------------------------------------------
def roc_auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve: P(score of a positive > score of a negative) + half the ties,
    the Mann-Whitney U over the product of the group sizes."""
    scores, positive = np.asarray(scores, dtype=float), np.asarray(positive, dtype=bool)
    n1, n0 = int(positive.sum()), int((~positive).sum())
    if n1 == 0 or n0 == 0:
        return math.nan
    ranks = stats.rankdata(scores)
    u = ranks[positive].sum() - n1 * (n1 + 1) / 2
    return float(u / (n1 * n0))


def delong_se(scores: np.ndarray, positive: np.ndarray) -> float:
    """DeLong's standard error of the AUC (DeLong et al. 1988), from midranks: the placement
    values V10 (each positive's share of negatives below it) and V01 (each negative's share of
    positives above it), Var = var(V10) / n1 + var(V01) / n0."""
    scores, positive = np.asarray(scores, dtype=float), np.asarray(positive, dtype=bool)
    x, y = scores[positive], scores[~positive]
    n1, n0 = len(x), len(y)
    if n1 < 2 or n0 < 2:
        return math.nan
    combined = stats.rankdata(np.concatenate([x, y]))
    v10 = (combined[:n1] - stats.rankdata(x)) / n0
    v01 = 1 - (combined[n1:] - stats.rankdata(y)) / n1
    return float(np.sqrt(v10.var(ddof=1) / n1 + v01.var(ddof=1) / n0))


def youden_cutoff(scores: np.ndarray, positive: np.ndarray) -> tuple[float, float, float]:
    """The observed score t maximising Youden's J = sensitivity + specificity - 1 for the call
    "score >= t"; among equal J the lowest t. Returns (t, sensitivity, specificity)."""
    scores, positive = np.asarray(scores, dtype=float), np.asarray(positive, dtype=bool)
    x, y = np.sort(scores[positive]), np.sort(scores[~positive])
    candidates = np.unique(scores)
    sensitivity = (len(x) - np.searchsorted(x, candidates, side="left")) / len(x)
    specificity = np.searchsorted(y, candidates, side="left") / len(y)
    best = int(np.argmax(sensitivity + specificity))  # the first, lowest t, among ties
    return float(candidates[best]), float(sensitivity[best]), float(specificity[best])


# --- Thresholds --------------------------------------------------------------------------------
def _undefined(definition: Definition, outcome: str, reason: str, **basis: Any) -> Threshold:
    return Threshold(definition, outcome, False, None, reason=reason, basis=basis)


def jacobson_truax_cutoff(
    kind: str, start_mean: float, start_sd: float, norm_mean: float, norm_sd: float, better: str
) -> float:
    """Cut-off a, b or c of Jacobson & Truax (1991): a = 2 SD of the patients (at start) beyond
    their mean towards better; b = 2 SD of the normative population short of its mean; c = the
    point between the two means weighted by the SDs (equally far in SD units from both)."""
    towards_better = -1.0 if better == "lower" else 1.0
    if kind == "a":
        return start_mean + towards_better * 2 * start_sd
    if kind == "b":
        return norm_mean - towards_better * 2 * norm_sd
    return (start_sd * norm_mean + norm_sd * start_mean) / (start_sd + norm_sd)


def anchor_statistics(
    improvement: np.ndarray, anchor: np.ndarray, minimal: Iterable[float], improved: Iterable[float],
    level: float,
) -> dict[str, Any]:  # fmt: skip
    """The anchor-based estimates for one outcome: the mean improvement of the "a little better"
    level (with its t CI), the difference in mean improvement between the anchor's improved and
    not improved (Welch CI), and the ROC cut-off (Youden) of improved vs not improved, with the
    AUC and its DeLong Wald CI (truncated to 0-1, as pROC). Patients without both are left out."""
    keep = ~np.isnan(improvement) & ~np.isnan(anchor)
    scores, levels = improvement[keep], anchor[keep]
    little = scores[np.isin(levels, list(minimal))]
    positive = np.isin(levels, list(improved))
    out: dict[str, Any] = {
        "anchor_n": int(keep.sum()),
        "anchor_minimal_n": len(little),
        "anchor_improved_n": int(positive.sum()),
        "anchor_not_improved_n": int((~positive).sum()),
    }
    if len(little) >= 2:
        mean, sd = float(little.mean()), float(little.std(ddof=1))
        half = stats.t.ppf(0.5 + level / 2, len(little) - 1) * sd / np.sqrt(len(little))
        out |= {
            "anchor_minimal_mean": mean,
            "anchor_minimal_ci_low": mean - half,
            "anchor_minimal_ci_high": mean + half,
        }
    if positive.sum() >= 2 and (~positive).sum() >= 2:
        # The group-level anchor-based estimate: the mean improvement of the patients the anchor
        # calls improved minus the others', with Welch's CI (clinicalsignificance's cs_anchor
        # at the group level; Guyatt et al., J Clin Epidemiol 2002;55:900).
        welch = stats.ttest_ind(scores[positive], scores[~positive], equal_var=False)
        ci = welch.confidence_interval(level)
        out |= {
            "anchor_group_difference": float(scores[positive].mean() - scores[~positive].mean()),
            "anchor_group_ci_low": float(ci.low),
            "anchor_group_ci_high": float(ci.high),
        }
        auc, se = roc_auc(scores, positive), delong_se(scores, positive)
        z = normal_critical(level)
        cut, sensitivity, specificity = youden_cutoff(scores, positive)
        out |= {
            "auc": auc,
            "auc_ci_low": max(0.0, auc - z * se),
            "auc_ci_high": min(1.0, auc + z * se),
            "roc_cutoff": cut,
            "sensitivity": sensitivity,
            "specificity": specificity,
        }
    return out


def definition_threshold(
    definition: Definition,
    outcome: Outcome,
    patients: pd.DataFrame,
    occasions: list[str],
    settings: SignificanceSettings,
    level: float,
) -> Threshold:
    """One definition for one outcome: its threshold as a rule, computed from the analysis set
    where the definition says so, or the reason it cannot be defined here."""
    name, method = outcome.name, definition.method
    n, mean, sd = baseline_sd(patients, outcome, occasions[0])
    basis: dict[str, Any] = {"baseline_n": n, "baseline_mean": mean, "baseline_sd": sd}
    if method == "absolute":
        value = (definition.absolute or {}).get(name)
        if value is None:
            return _undefined(definition, name, f"no threshold given for {name}", **basis)
        return Threshold(definition, name, False, McidRule(float(value), None), basis=basis)
    if method == "percent":
        return Threshold(definition, name, False, McidRule(None, definition.percent), basis=basis)
    if method in SLOPE_METHODS:
        return _slope_threshold(definition, outcome, patients, occasions, basis)
    needs_sd = method in (*DISTRIBUTION_METHODS, *RELIABLE_CHANGE_METHODS, *RCI_METHODS)
    if needs_sd and (not np.isfinite(sd) or sd == 0):
        return _undefined(definition, name, "the start values have no SD", **basis)
    if method == "half_sd":
        return Threshold(definition, name, False, McidRule(0.5 * sd, None), basis=basis)
    if needs_sd:
        reliability = settings.reliability.get(name)
        if reliability is None:
            return _undefined(
                definition, name,
                f"no reliability for {name} (config clinical_significance.reliability)", **basis,
            )  # fmt: skip
        sem = sd * math.sqrt(1 - reliability.r)
        s_diff = math.sqrt(2) * sem
        basis |= {"reliability": reliability.r, "sem": sem, "s_diff": s_diff}
        if method == "sem":
            return Threshold(definition, name, False, McidRule(sem, None), basis=basis)
        if method == "mdc95":
            return Threshold(
                definition, name, False, McidRule(Z_RELIABLE * s_diff, None), basis=basis
            )
        if method in RCI_METHODS:
            found = rci_rule(
                method, patients, outcome, occasions, reliability.r, reliability.r_post
            )
            if method == "rci_nk":
                basis["reliability_post"] = (
                    reliability.r if reliability.r_post is None else reliability.r_post
                )
            if method == "rci_ha":
                r_dd = {o: found.difference_reliability(o) for o in occasions[1:]}
                bad = {o: v for o, v in r_dd.items() if not v > 0}
                if bad:  # the index divides by its square root
                    where = ", ".join(f"{v:.3g} at {o}" for o, v in bad.items())
                    return _undefined(
                        definition, name,
                        f"the reliability of the differences r_dd is not positive ({where}): "
                        "Hageman-Arrindell's index is not defined", **basis,
                    )  # fmt: skip
            return Threshold(definition, name, False, None, basis=basis, rci=found)
        rule = McidRule(Z_RELIABLE * s_diff, None, strict=True)
        if method == "reliable_change":
            return Threshold(definition, name, False, rule, basis=basis)
        norms = settings.norms.get(name)
        if definition.cutoff in ("b", "c") and norms is None:
            return _undefined(
                definition, name,
                f"cut-off {definition.cutoff} needs normative values for {name} "
                "(config clinical_significance.norms)", **basis,
            )  # fmt: skip
        if norms is not None:
            basis |= {"norm_mean": norms.mean, "norm_sd": norms.sd}
        cutoff = jacobson_truax_cutoff(
            definition.cutoff or "a", basis["baseline_mean"], sd,
            norms.mean if norms else math.nan, norms.sd if norms else math.nan, outcome.better,
        )  # fmt: skip
        basis["cutoff"] = cutoff
        low, high = outcome.range
        if not low < cutoff < high:  # nobody can cross it: a definition no patient can meet
            return _undefined(
                definition, name,
                f"the cut-off {cutoff:.4g} lies outside the scale's range [{low:g}, {high:g}]: "
                "no patient can cross it", **basis,
            )  # fmt: skip
        return Threshold(definition, name, False, rule, cutoff=cutoff, basis=basis)
    # Anchor-based
    anchor = settings.anchor
    column = f"anchor_{anchor.occasion}" if anchor else None
    if anchor is None or column not in patients:
        return _undefined(
            definition, name,
            "no anchor in this extract (config derived.anchor and clinical_significance.anchor)",
            **basis,
        )  # fmt: skip
    improvement = _improvement(patients, outcome, occasions[0], anchor.occasion)
    found = anchor_statistics(
        improvement, patients[column].astype(float).to_numpy(), anchor.minimal, anchor.improved,
        level,
    )  # fmt: skip
    basis |= {"anchor_occasion": anchor.occasion, **found}
    key = "anchor_minimal_mean" if method == "anchor_mean_change" else "roc_cutoff"
    value = found.get(key)
    if value is None:
        what = (
            "fewer than 2 patients at the 'a little better' level"
            if method == "anchor_mean_change"
            else "fewer than 2 patients improved or not improved by the anchor"
        )
        return _undefined(definition, name, what, **basis)
    if value <= 0:
        return _undefined(
            definition, name, f"the anchor-based threshold {value:.3g} is not an improvement",
            **basis,
        )  # fmt: skip
    return Threshold(definition, name, False, McidRule(float(value), None), basis=basis)


def _slope_threshold(
    definition: Definition,
    outcome: Outcome,
    patients: pd.DataFrame,
    occasions: list[str],
    basis: dict[str, Any],
) -> Threshold:
    """The HLM index, or why it cannot be had: fewer than three occasions, or too few patients
    measured at three of them."""
    name = outcome.name
    if len(occasions) < 3:
        return _undefined(
            definition, name,
            f"a slope over the occasions needs three or more; this study has {len(occasions)}",
            **basis,
        )  # fmt: skip
    try:
        found = slope_rule(patients, outcome, occasions)
    except ValueError as error:
        return _undefined(definition, name, str(error), **basis)
    model = found.model
    basis |= {
        "slope_n": model.n_patients,
        "fixed_slope": float(model.beta[1]),
        "slope_between_sd": math.sqrt(model.covariance[1, 1]),
        "slope_singular": model.singular,
    }
    return Threshold(definition, name, False, None, basis=basis, slopes=found)


def _improvement(patients: pd.DataFrame, outcome: Outcome, start: str, occasion: str) -> np.ndarray:
    """Improvement from `start` to `occasion` (cohort.responders.improvement_scores)."""
    before = patients[outcome.column_at(start)].astype(float).to_numpy()
    after = patients[outcome.column_at(occasion)].astype(float).to_numpy()
    improvement, _ = improvement_scores(before, after, outcome)
    return np.asarray(improvement, dtype=float)


def primary_definition(outcome: Outcome) -> Definition:
    """Each outcome's own MCID rule, as a definition: the primary one (the headline)."""
    return Definition(
        PRIMARY,
        "mcid",
        "MCID (primary)",
        outcome.rule.reference,
        assumption=outcome.rule.assumption,
    )


def thresholds(
    patients: pd.DataFrame,
    outcomes: dict[str, Outcome],
    occasions: list[str],
    settings: SignificanceSettings,
    level: float,
) -> list[Threshold]:
    """Every definition (the primary first) for every outcome."""
    out = []
    for outcome in outcomes.values():
        n, mean, sd = baseline_sd(patients, outcome, occasions[0])
        basis = {"baseline_n": n, "baseline_mean": mean, "baseline_sd": sd}
        out.append(
            Threshold(primary_definition(outcome), outcome.name, True, outcome.rule, basis=basis)
        )
        for definition in settings.definitions:
            out.append(
                definition_threshold(definition, outcome, patients, occasions, settings, level)
            )
    return out


DEFINITION_COLUMNS = (
    "definition", "label", "method", "primary", "outcome", "threshold_absolute",
    "threshold_percent", "strict", "rule", "formula", "baseline_n", "baseline_mean",
    "baseline_sd", "reliability", "reliability_post", "sem", "s_diff", "cutoff", "norm_mean", "norm_sd",
    "slope_n", "fixed_slope", "slope_between_sd", "slope_singular", "anchor_occasion", "anchor_n", "anchor_minimal_n", "anchor_minimal_mean",
    "anchor_minimal_ci_low", "anchor_minimal_ci_high", "anchor_improved_n",
    "anchor_not_improved_n", "anchor_group_difference", "anchor_group_ci_low",
    "anchor_group_ci_high", "auc", "auc_ci_low", "auc_ci_high", "roc_cutoff", "sensitivity",
    "specificity", "status", "reference", "assumption",
)  # fmt: skip


def definition_status(threshold: Threshold) -> str:
    """defined, or not defined and why (a cut-off outside the scale's range included)."""
    if not threshold.defined:
        return f"not defined: {threshold.reason}"
    return "defined"


def definitions_table(found: list[Threshold], outcomes: dict[str, Outcome]) -> pd.DataFrame:
    """One row per definition and outcome: the threshold and what it was computed from."""
    rows = []
    for t in found:
        d = t.definition
        formula = FORMULAS[d.method].format(cutoff=d.cutoff or "a")
        if d.method == "clinically_significant":
            formula += f"; {CUTOFF_FORMULAS[d.cutoff or 'a']}"
        rule = t.rule
        rows.append(
            {
                "definition": d.name,
                "label": d.label,
                "method": d.method,
                "primary": t.primary,
                "outcome": t.outcome,
                "threshold_absolute": rule.absolute if rule else np.nan,
                "threshold_percent": rule.percent if rule else np.nan,
                "strict": rule.strict if rule else np.nan,
                "rule": definition_rule_text(t) if t.defined else "",
                "formula": formula,
                **t.basis,
                "status": definition_status(t),
                "reference": d.reference,
                "assumption": d.assumption,
            }
        )
    return frame(rows, DEFINITION_COLUMNS).reindex(columns=list(DEFINITION_COLUMNS))


def definition_rule_text(threshold: Threshold) -> str:
    """The rule in words (cohort.responders.rule_text), with the cut-off a CSC rule adds."""
    if threshold.rci is not None:
        name = threshold.definition.method.removeprefix("rci_").upper()
        return f"{RCI_RULE_PREFIX} ({name} index) beyond {threshold.rci.critical:g} towards better"
    if threshold.slopes is not None:
        return (
            f"{RCI_RULE_PREFIX} ({SLOPE_RULE_WORDS}) beyond {threshold.slopes.critical:g} "
            "towards better"
        )
    text = rule_text(threshold.rule)
    if threshold.cutoff is not None:
        text += f" and follow-up beyond {threshold.cutoff:.4g} (cut-off {threshold.definition.cutoff or 'a'})"
    return text


# --- Classification under a definition ---------------------------------------------------------
def definition_codes(
    start: np.ndarray,
    follow: np.ndarray,
    outcome: Outcome,
    threshold: Threshold,
    occasion: str | None = None,
) -> np.ndarray:
    """Each patient's category (an index into cohort.responders.CATEGORIES) under one
    definition: the rule's threshold as cohort.responders.category_codes applies it, and for
    clinically significant change the follow-up beyond the cut-off, a start value already beyond
    it making the patient could-not-improve (there is nothing to cross). An index of
    RCI_METHODS (at `occasion`): responder beyond its critical value towards better,
    could-not-improve where even the scale's best value would not be."""
    if threshold.slopes is not None:
        raise ValueError("the HLM index reads every occasion: use slope_codes")
    if threshold.rci is not None:
        return rci_codes(start, follow, outcome, threshold.rci, occasion)
    codes = category_codes(start, follow, replace(outcome, mcid=threshold.rule))
    if threshold.cutoff is None:
        return codes
    start, follow = np.asarray(start, dtype=float), np.asarray(follow, dtype=float)
    with np.errstate(invalid="ignore"):
        if outcome.better == "lower":
            follow_beyond, start_beyond = follow < threshold.cutoff, start < threshold.cutoff
        else:
            follow_beyond, start_beyond = follow > threshold.cutoff, start > threshold.cutoff
    code = CATEGORIES.index
    codes = codes.copy()
    codes[(codes == code(RESPONDER)) & ~follow_beyond] = code(NON_RESPONDER)
    codes[(codes != code(MISSING)) & start_beyond] = code(COULD_NOT_IMPROVE)
    return codes


def rci_codes(
    start: np.ndarray, follow: np.ndarray, outcome: Outcome, rci: RciRule, occasion: str | None
) -> np.ndarray:
    """Categories under a reliable-change index (definition_codes)."""
    if occasion is None:
        raise ValueError("a reliable-change index needs the follow-up occasion")
    start, follow = np.asarray(start, dtype=float), np.asarray(follow, dtype=float)
    best = np.full_like(start, outcome.range[1] if outcome.better == "higher" else outcome.range[0])
    with np.errstate(invalid="ignore"):
        improved = rci.index(start, follow, occasion, outcome.better) > rci.critical
        reachable = rci.index(start, best, occasion, outcome.better) > rci.critical
    code = CATEGORIES.index
    codes = np.where(improved, code(RESPONDER), code(NON_RESPONDER))
    codes = np.where(~improved & ~reachable, code(COULD_NOT_IMPROVE), codes)
    return np.where(np.isnan(start) | np.isnan(follow), code(MISSING), codes)


def slope_codes(values: np.ndarray, outcome: Outcome, slopes: SlopeRule) -> np.ndarray:
    """Categories under the HLM index, for the patients measured at the first and the last
    occasion (every definition's denominator there; a middle occasion may be missing, the
    slope then rests on the others): responder beyond the critical value towards better,
    could-not-improve where even the scale's best value at every measured follow-up would not
    be."""
    values = np.asarray(values, dtype=float)
    best = outcome.range[1] if outcome.better == "higher" else outcome.range[0]
    at_best = values.copy()
    follow = at_best[:, 1:]
    follow[~np.isnan(follow)] = best
    with np.errstate(invalid="ignore"):
        improved = slopes.index(values, outcome.better) > slopes.critical
        reachable = slopes.index(at_best, outcome.better) > slopes.critical
    code = CATEGORIES.index
    codes = np.where(improved, code(RESPONDER), code(NON_RESPONDER))
    codes = np.where(~improved & ~reachable, code(COULD_NOT_IMPROVE), codes)
    return np.where(np.isnan(values[:, 0]) | np.isnan(values[:, -1]), code(MISSING), codes)


def _classifications(
    data: pd.DataFrame, outcomes: dict[str, Outcome], occasions: list[str], found: list[Threshold]
) -> Iterator[tuple[Threshold, str, np.ndarray, bool]]:
    """Each defined definition's categories (definition_codes) per follow-up occasion, and
    whether both occasions are observed for every patient (an imputed set left incomplete
    where too few values were observed to impute)."""
    for t in found:
        if not t.defined:
            continue
        outcome = outcomes[t.outcome]
        if t.slopes is not None:
            values = slope_values(data, outcome, occasions)
            ends = values[:, [0, -1]]
            complete = not np.isnan(ends).any()
            yield t, t.slopes.occasion, slope_codes(values, outcome, t.slopes), complete
            continue
        start = data[outcome.column_at(occasions[0])].to_numpy(dtype=float, na_value=np.nan)
        for occasion in occasions[1:]:
            follow = data[outcome.column_at(occasion)].to_numpy(dtype=float, na_value=np.nan)
            complete = not (np.isnan(start).any() or np.isnan(follow).any())
            yield t, occasion, definition_codes(start, follow, outcome, t, occasion), complete


def classify_definitions(
    patients: pd.DataFrame,
    outcomes: dict[str, Outcome],
    occasions: list[str],
    found: list[Threshold],
) -> pd.DataFrame:
    """Long table: patient x defined definition x outcome x follow-up occasion, with the category."""
    names = np.array(CATEGORIES, dtype=object)
    frames = [
        pd.DataFrame(
            {
                "patient_id": patients["patient_id"].to_numpy(),
                "definition": t.definition.name,
                "outcome": t.outcome,
                "occasion": occasion,
                "category": names[codes],
            }
        )
        for t, occasion, codes, _ in _classifications(patients, outcomes, occasions, found)
    ]
    columns = ["patient_id", "definition", "outcome", "occasion", "category"]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)


# --- Rates under each definition ---------------------------------------------------------------
RATE_COLUMNS = (
    "definition", "outcome", "occasion", "analysis", "rule", "same_as", "threshold_absolute",
    "threshold_percent", "strict", "cutoff", "N", "n", "responders",
    "non_responders", "could_not_improve", "missing", "pct", "ci_low_pct", "ci_high_pct",
    "method", "fmi", "monte_carlo_se_logit",
)  # fmt: skip
COMPLETE_CASE, ALL_INCLUDED, MULTIPLE_IMPUTATION = (
    "available cases",
    "all in analysis set, missing = non-responder",
    "multiple imputation",
)


def imputed_rates(
    completed: Iterable[pd.DataFrame],
    outcomes: dict[str, Outcome],
    occasions: list[str],
    found: list[Threshold],
    handling: str,
) -> tuple[int, dict[tuple[str, str, str], list[tuple[float, int]]]]:
    """In each completed data set, the responder rate and denominator under every defined
    definition, per outcome and follow-up (not estimable where the imputation left values
    missing): (m, rates by (definition, outcome, occasion))."""
    rates: dict[tuple[str, str, str], list[tuple[float, int]]] = {}
    m = 0
    responder = CATEGORIES.index(RESPONDER)
    for data in completed:
        m += 1
        for t, occasion, codes, complete in _classifications(data, outcomes, occasions, found):
            d = int(in_population(codes, handling).sum())
            if complete and d:  # else not imputed: too few observed values
                key = (t.definition.name, t.outcome, occasion)
                rates.setdefault(key, []).append((int((codes == responder).sum()) / d, d))
    return m, rates


def identical_definitions(classified: pd.DataFrame) -> dict[tuple[str, str, str], str]:
    """Each definition that classifies every patient as an earlier one does (table order, the
    primary first) at an outcome and occasion, with that earlier definition's name: two rows
    of the same counts are one result, not two."""
    same: dict[tuple[str, str, str], str] = {}
    seen: dict[tuple[str, str], list[tuple[str, np.ndarray]]] = {}
    keys = ["definition", "outcome", "occasion"]
    for (name, outcome, occasion), group in classified.groupby(keys, sort=False):
        categories = group["category"].to_numpy()  # patients in the analysis set's order
        earlier = seen.setdefault((outcome, occasion), [])
        match = next(
            (d for d, c in earlier if len(c) == len(categories) and (c == categories).all()), None
        )
        if match is not None:
            same[(name, outcome, occasion)] = match
        earlier.append((name, categories))
    return same


def definition_rates(
    classified: pd.DataFrame,
    found: list[Threshold],
    occasions: list[str],
    handling: str,
    n_analysis: int,
    level: float,
    imputed: tuple[int, dict[tuple[str, str, str], list[tuple[float, int]]]],
) -> pd.DataFrame:
    """The responder rate under each definition, outcome and follow-up: available cases and all
    of the analysis set (missing = non-responder) with Wilson CIs (cohort.responders.rate_rows),
    and pooled over the imputations by Rubin's rules on the logit scale. A definition that cannot
    be defined for the outcome gets one row saying why; one that classifies every patient as an
    earlier one does names it (same_as)."""
    m, rates = imputed
    groups = dict(tuple(classified.groupby(["definition", "outcome", "occasion"], sort=False)))
    same = identical_definitions(classified)
    rows = []
    for t in found:
        name = t.definition.name
        for occasion in occasions[1:]:
            base = {"definition": name, "outcome": t.outcome, "occasion": occasion, "N": n_analysis}
            if not t.defined:
                rows.append({**base, "analysis": "", "method": f"not defined: {t.reason}"})
                continue
            if t.slopes is not None and occasion != t.slopes.occasion:
                rows.append(
                    {
                        **base,
                        "analysis": "",
                        "method": "not defined at this occasion: the HLM index is each patient's "
                        f"slope over all occasions, published at {t.slopes.occasion}",
                    }
                )
                continue
            rule = definition_rule_text(t)
            base |= {
                "threshold_absolute": t.rule.absolute if t.rule else np.nan,
                "threshold_percent": t.rule.percent if t.rule else np.nan,
                "strict": t.rule.strict if t.rule else np.nan,
                "cutoff": t.cutoff,
            }
            group = groups[(name, t.outcome, occasion)]
            for rate, analysis in zip(
                rate_rows(group["category"], handling, n_analysis, level),
                (COMPLETE_CASE, ALL_INCLUDED),
                strict=True,
            ):
                rows.append(
                    {
                        **base,
                        "analysis": analysis,
                        "rule": rule,
                        "same_as": same.get((name, t.outcome, occasion), ""),
                        **{k: rate[k] for k in RATE_COLUMNS if k in rate and k not in base},
                        "method": rate["ci_method"],
                    }
                )
            pooled_rates = rates.get((name, t.outcome, occasion))
            if not pooled_rates or len(pooled_rates) < m:
                rows.append(
                    {
                        **base,
                        "analysis": MULTIPLE_IMPUTATION,
                        "rule": rule,
                        "method": "not estimable: too few patients measured at this occasion to impute",
                    }
                )
                continue
            shares, ns = zip(*pooled_rates, strict=True)
            n = int(np.mean(ns))
            estimate, low, high, pooled = pooled_proportion(np.array(shares), n, level)
            why = degenerate_pooling(np.array(shares), n, pooled)
            if why:
                rows.append(
                    {**base, "analysis": MULTIPLE_IMPUTATION, "rule": rule, "n": n, "method": why}
                )
                continue
            rows.append(
                {
                    **base,
                    "analysis": MULTIPLE_IMPUTATION,
                    "rule": rule,
                    "n": n,
                    "pct": 100 * estimate,
                    "ci_low_pct": 100 * low,
                    "ci_high_pct": 100 * high,
                    "method": f"MICE, m = {m}, Rubin's rules on the logit scale, df {pooled.df:.0f}",
                    "fmi": pooled.fmi,
                    "monte_carlo_se_logit": np.sqrt(pooled.between / m),
                }
            )
    return frame(rows, RATE_COLUMNS).reindex(columns=list(RATE_COLUMNS))


# --- Agreement between definitions -------------------------------------------------------------
AGREEMENT_COLUMNS = (
    "outcome", "occasion", "first", "second", "n", "both", "first_only", "second_only",
    "neither", "agreement_pct", "kappa", "kappa_ci_low", "kappa_ci_high", "method",
)  # fmt: skip


def kappa_2x2(both: int, first_only: int, second_only: int, neither: int, level: float) -> tuple[float, float, float]:  # fmt: skip
    """Cohen's kappa of two binary classifications and its asymptotic CI (statsmodels'
    cohens_kappa: the large-sample SE of Fleiss, Cohen & Everitt, Psychol Bull 1969;72:323);
    NaN where undefined (one classification constant, so that chance agreement is 1)."""
    table = np.array([[both, first_only], [second_only, neither]], dtype=float)
    n = table.sum()
    chance = (table.sum(axis=1) @ table.sum(axis=0)) / n**2 if n else 1.0
    if n == 0 or math.isclose(chance, 1.0):
        return math.nan, math.nan, math.nan
    result = cohens_kappa(table)
    kappa, se = float(result["kappa"]), float(result["std_kappa"])
    if se == 0:  # perfect agreement (or disagreement): the asymptotic SE is 0, no interval
        return kappa, math.nan, math.nan
    half = normal_critical(level) * se
    return kappa, kappa - half, kappa + half


def agreement(classified: pd.DataFrame, level: float) -> pd.DataFrame:
    """Pairwise agreement between definitions, per outcome and follow-up occasion, among the
    patients measured at start and at the occasion (could-not-improve counts as not improved,
    so that every pair is compared on the same patients): responder under both, the first only,
    the second only, neither; % agreement and Cohen's kappa with its CI (none at perfect
    agreement, where the asymptotic SE is 0)."""
    rows = []
    for (outcome, occasion), group in classified.groupby(["outcome", "occasion"], sort=False):
        wide = group.pivot(index="patient_id", columns="definition", values="category")
        wide = wide[list(dict.fromkeys(group["definition"]))]  # config order, primary first
        measured = wide.iloc[:, 0].ne(MISSING).to_numpy()
        responder = wide[measured].eq(RESPONDER)
        for first, second in itertools.combinations(wide.columns, 2):
            x, y = responder[first].to_numpy(), responder[second].to_numpy()
            cells = [
                int((x & y).sum()),
                int((x & ~y).sum()),
                int((~x & y).sum()),
                int((~x & ~y).sum()),
            ]
            n = int(measured.sum())
            kappa, low, high = kappa_2x2(*cells, level)
            rows.append(
                {
                    "outcome": outcome,
                    "occasion": occasion,
                    "first": first,
                    "second": second,
                    "n": n,
                    **dict(
                        zip(("both", "first_only", "second_only", "neither"), cells, strict=True)
                    ),
                    "agreement_pct": 100 * (cells[0] + cells[3]) / n if n else np.nan,
                    "kappa": kappa,
                    "kappa_ci_low": low,
                    "kappa_ci_high": high,
                    "method": f"Cohen's kappa, {level:.0%} CI: asymptotic SE (Fleiss, Cohen & Everitt 1969)",
                }
            )
    return frame(rows, AGREEMENT_COLUMNS).reindex(columns=list(AGREEMENT_COLUMNS))
