"""Clinical significance beyond one MCID: every definition of config `clinical_significance`
beside the primary one (each outcome's `mcid`), its threshold computed from the data where it
is distribution- or anchor-based, the responder rate under each (both denominators and multiple
imputation) and the agreement between definitions (% and Cohen's kappa).

Definitions (improvement is change in the better direction, as in cohort.analysis.responders):
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
  2005;73:982; cohort.models.individual_slopes); three or more occasions, published at the last;
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

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from cohort.analysis.responders import (
    baseline_sd,
    improvement_scores,
    rule_text,
)
from cohort.analysis.roc import delong_se, roc_auc, youden_cutoff
from cohort.core.distributions import normal_critical
from cohort.core.frames import frame
from cohort.core.settings import (
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
from cohort.models.individual_slopes import SlopeModel, fit_slopes

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
    values (cohort.models.individual_slopes), over `occasions` numbered 0, 1, 2, ... (equally spaced, as
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
        return _reliable_change_threshold(definition, outcome, patients, occasions, settings, basis)
    return _anchor_threshold(definition, outcome, patients, occasions, settings, level, basis)


def _reliable_change_threshold(
    definition: Definition,
    outcome: Outcome,
    patients: pd.DataFrame,
    occasions: list[str],
    settings: SignificanceSettings,
    basis: dict[str, Any],
) -> Threshold:
    """The definitions built on the SEM: sem, mdc95, the reliable-change indices and
    Jacobson-Truax's clinically significant change (a reliable change past a cut-off)."""
    name, method, sd = outcome.name, definition.method, basis["baseline_sd"]
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
        return Threshold(definition, name, False, McidRule(Z_RELIABLE * s_diff, None), basis=basis)
    if method in RCI_METHODS:
        found = rci_rule(method, patients, outcome, occasions, reliability.r, reliability.r_post)
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


def _anchor_threshold(
    definition: Definition,
    outcome: Outcome,
    patients: pd.DataFrame,
    occasions: list[str],
    settings: SignificanceSettings,
    level: float,
    basis: dict[str, Any],
) -> Threshold:
    """The anchor-based definitions: the mean improvement of the 'a little better' patients, or
    the ROC cut-off between improved and not improved by the anchor."""
    name, method = outcome.name, definition.method
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
    """Improvement from `start` to `occasion` (cohort.analysis.responders.improvement_scores)."""
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
    """The rule in words (cohort.analysis.responders.rule_text), with the cut-off a CSC rule adds."""
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
