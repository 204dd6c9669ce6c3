"""Typed settings: the sections of the validated config as frozen dataclasses.

A rule receives only the config sections it uses (its `params`, so that editing one reruns it);
its stage builds these objects from them once, and every analysis function takes the typed
settings it reads (an `Outcome`, the occasions, `Statistics`), never the config dict. The
config's meaning is documented once, in config/config.schema.yaml (docs/configuration.md is
generated from it); defaults here are those of the schema's optional keys.
Model and disclosure settings live beside their code: `models.mixed.MixedModelSettings`,
`models.logistic.LogisticSettings`, `disclosure.DisclosureSettings`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Study:
    """Config `study`: identifier, citation, the paper compared against, synthetic or real."""

    name: str
    title: str
    synthetic: bool
    paper: str | None = None

    @classmethod
    def from_config(cls, study: Mapping[str, Any]) -> Study:
        return cls(study["name"], study["title"], bool(study["synthetic"]), study.get("paper"))


@dataclass(frozen=True)
class Occasion:
    """One assessment occasion of config `occasions` (the first is the baseline)."""

    name: str
    label: str


def occasions_from_config(occasions: list[Mapping[str, Any]]) -> tuple[Occasion, ...]:
    """Config `occasions` in time order."""
    return tuple(Occasion(o["name"], o["label"]) for o in occasions)


@dataclass(frozen=True)
class McidRule:
    """Config `outcomes.<name>.mcid`: the improvement a responder reaches, absolute (scale units)
    and/or percent of the start value, combined by either/both; `strict` for "more than"."""

    absolute: float | None
    percent: float | None
    combine: str = "either"
    strict: bool = False
    assumption: bool = False
    reference: str = ""

    @classmethod
    def from_config(cls, mcid: Mapping[str, Any]) -> McidRule:
        return cls(
            mcid.get("absolute"),
            mcid.get("percent"),
            mcid.get("combine", "either"),
            bool(mcid.get("strict", False)),
            bool(mcid.get("assumption", False)),
            mcid.get("reference", ""),
        )


@dataclass(frozen=True)
class Outcome:
    """One outcome of config `outcomes`: label, source (a column, or items with the minimum
    answered and how they make the score), scale range, direction of benefit, decimals and, where the rule reads it, its
    MCID rule (None in the rules that run before classification)."""

    name: str
    label: str
    range: tuple[float, float]
    better: str
    decimals: int = 0
    column: str | None = None
    items: tuple[str, ...] = ()
    min_answered: int | None = None
    score: str = "mean"  # of the items: mean, or sum (prorated)
    mcid: McidRule | None = None

    @classmethod
    def from_config(cls, name: str, spec: Mapping[str, Any]) -> Outcome:
        source = spec["source"]
        low, high = spec["range"]
        return cls(
            name=name,
            label=spec["label"],
            range=(low, high),
            better=spec["better"],
            decimals=int(spec.get("decimals", 0)),
            column=source.get("column"),
            items=tuple(source.get("items", ())),
            min_answered=source.get("min_answered"),
            score=source.get("score", "mean"),
            mcid=McidRule.from_config(spec["mcid"]) if "mcid" in spec else None,
        )

    @property
    def rule(self) -> McidRule:
        """The MCID rule; an error naming the outcome where the rule was not given it."""
        if self.mcid is None:
            raise ValueError(f"outcome {self.name!r}: this rule was not given the MCID settings")
        return self.mcid

    def column_at(self, occasion: str | Occasion) -> str:
        """The patient-table column of this outcome at an occasion (`pain_start`)."""
        name = occasion.name if isinstance(occasion, Occasion) else occasion
        return f"{self.name}_{name}"


def outcomes_from_config(outcomes: Mapping[str, Mapping[str, Any]]) -> dict[str, Outcome]:
    """Config `outcomes`, in their order."""
    return {name: Outcome.from_config(name, spec) for name, spec in outcomes.items()}


@dataclass(frozen=True)
class CleaningSettings:
    """Config `cleaning`: accepted date formats, whether assessment dates must follow the
    occasions' order, whether identifier-like columns are allowed through, and the range of
    plausible dates."""

    date_formats: tuple[str, ...] = ("%Y-%m-%d",)
    check_occasion_order: bool = True
    allow_identifiers: bool = False
    date_range: tuple[str, str] = ("1900-01-01", "2100-12-31")

    @classmethod
    def from_config(cls, cleaning: Mapping[str, Any]) -> CleaningSettings:
        return cls(
            tuple(cleaning["date_formats"]),
            bool(cleaning["check_occasion_order"]),
            bool(cleaning["allow_identifiers"]),
            tuple(str(d) for d in cleaning.get("date_range", cls.date_range)),
        )


@dataclass(frozen=True)
class Statistics:
    """Config `statistics`: confidence level, quantile definition, Wilcoxon zero handling."""

    confidence_level: float = 0.95
    quantiles: str = "type7"
    wilcoxon_zeros: str = "wilcox"

    @classmethod
    def from_config(cls, statistics: Mapping[str, Any] | None) -> Statistics:
        return cls(**(statistics or {}))


@dataclass(frozen=True)
class ImputationSettings:
    """Config `models.imputation`: number of imputations (or auto), its cap in imputed
    records, MICE iterations, PMM donors, seed and parallel parts."""

    m: int | str = "auto"
    max_imputed_records: int = 5_000_000
    iterations: int = 10
    donors: int = 5
    seed: int = 1
    jobs: int = 2

    @classmethod
    def from_config(cls, imputation: Mapping[str, Any] | None) -> ImputationSettings:
        return cls(**(imputation or {}))


@dataclass(frozen=True)
class ModelTerms:
    """What the models adjust for: config `covariates`, `models.dose`, `models.categories`."""

    covariates: tuple[str, ...] = ()
    dose: str | None = None
    categories: tuple[str, ...] = ()

    @classmethod
    def from_config(cls, covariates: list[str], models: Mapping[str, Any]) -> ModelTerms:
        return cls(tuple(covariates), models.get("dose"), tuple(models.get("categories", ())))


@dataclass(frozen=True)
class Comparison:
    """Config `comparison`: the patient-level column of the groups and its reference level."""

    variable: str
    reference: str

    @classmethod
    def from_config(cls, comparison: Mapping[str, Any] | None) -> Comparison | None:
        return cls(comparison["variable"], str(comparison["reference"])) if comparison else None


@dataclass(frozen=True)
class Analysis:
    """The settings an analysis stage reads, built from the config sections its rule receives.
    A section the rule was not given stays at its default, so a stage cannot read it unseen:
    the rule's params (rules/*.smk) list what a change reruns."""

    occasions: tuple[Occasion, ...]
    outcomes: dict[str, Outcome]
    statistics: Statistics
    study: Study | None = None
    could_not_improve: str = "exclude"
    terms: ModelTerms = ModelTerms()
    imputation: ImputationSettings = ImputationSettings()
    derived: Mapping[str, Any] | None = None
    cluster: str | None = None
    comparison: Comparison | None = None
    significance: SignificanceSettings | None = None

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Analysis:
        models = config.get("models", {})
        responders = config.get("responders", {})
        return cls(
            occasions=occasions_from_config(config["occasions"]),
            outcomes=outcomes_from_config(config["outcomes"]),
            statistics=Statistics.from_config(config.get("statistics")),
            study=Study.from_config(config["study"]) if "study" in config else None,
            could_not_improve=responders.get("could_not_improve", "exclude"),
            terms=ModelTerms.from_config(config.get("covariates", []), models),
            imputation=ImputationSettings.from_config(models.get("imputation")),
            derived=config.get("derived"),
            cluster=config.get("cluster"),
            comparison=Comparison.from_config(config.get("comparison")),
            significance=SignificanceSettings.from_config(config.get("clinical_significance")),
        )

    @property
    def synthetic(self) -> bool:
        """Whether every footer carries the synthetic-data warning (config `study.synthetic`)."""
        if self.study is None:
            raise ValueError("this rule was not given the config section 'study'")
        return self.study.synthetic

    @property
    def occasion_names(self) -> list[str]:
        return [o.name for o in self.occasions]

    @property
    def baseline(self) -> str:
        """The first occasion's name: every change and response is measured from it."""
        return self.occasions[0].name

    @property
    def occasion_labels(self) -> dict[str, str]:
        return {o.name: o.label for o in self.occasions}

    @property
    def outcome_labels(self) -> dict[str, str]:
        return {name: o.label for name, o in self.outcomes.items()}


# Methods of config `clinical_significance.definitions` (cohort.analysis.significance computes them).
FIXED_METHODS = ("absolute", "percent")
DISTRIBUTION_METHODS = ("half_sd", "sem", "mdc95")
RELIABLE_CHANGE_METHODS = ("reliable_change", "clinically_significant")
# Reliable-change indices beside Jacobson-Truax's, as R's clinicalsignificance computes them
# (Claus et al., calc_rci.R): each adjusts the change for regression to the mean.
RCI_METHODS = ("rci_gln", "rci_en", "rci_hll", "rci_nk", "rci_ha")
RCI_RULE_PREFIX = "reliable change"  # how the rule of an RCI_METHODS definition begins
# Reliable change of each patient's own slope over all occasions (three or more), from a random
# intercept and slope model: the HLM method (cohort.models.individual_slopes).
SLOPE_METHODS = ("rci_hlm",)
SLOPE_RULE_WORDS = "HLM slope over all occasions"  # in the rule of the SLOPE_METHODS index
ANCHOR_METHODS = ("anchor_mean_change", "anchor_roc")
METHODS = (
    *FIXED_METHODS, *DISTRIBUTION_METHODS, *RELIABLE_CHANGE_METHODS, *RCI_METHODS,
    *SLOPE_METHODS, *ANCHOR_METHODS,
)  # fmt: skip
PRIMARY = "mcid"  # the name of each outcome's own MCID rule among the definitions


@dataclass(frozen=True)
class Definition:
    """One definition of clinically important improvement of config
    `clinical_significance.definitions` (the outcomes' own `mcid` rules are the primary one)."""

    name: str
    method: str
    label: str
    reference: str
    absolute: Mapping[str, float] | None = None  # method absolute: threshold per outcome
    percent: float | None = None  # method percent
    cutoff: str | None = None  # method clinically_significant: a, b or c
    assumption: bool = False

    @classmethod
    def from_config(cls, name: str, spec: Mapping[str, Any]) -> Definition:
        return cls(
            name=name,
            method=spec["method"],
            label=spec.get("label", name.replace("_", " ")),
            reference=spec["reference"],
            absolute=spec.get("absolute"),
            percent=spec.get("percent"),
            cutoff=spec.get("cutoff"),
            assumption=bool(spec.get("assumption", False)),
        )


@dataclass(frozen=True)
class Reliability:
    """Config `clinical_significance.reliability.<outcome>`: test-retest reliability r and its
    source, and the reliability at follow-up that Nunnally-Kotsch's index reads (r if not given)."""

    r: float
    reference: str
    assumption: bool = False
    r_post: float | None = None


@dataclass(frozen=True)
class Norms:
    """Config `clinical_significance.norms.<outcome>`: mean and SD of a functional (normative)
    population, for the Jacobson-Truax cut-offs b and c."""

    mean: float
    sd: float
    reference: str
    assumption: bool = False


@dataclass(frozen=True)
class AnchorSettings:
    """Config `clinical_significance.anchor`: the occasion the anchor (derived `anchor`, e.g. a
    patient global impression of change) is read at, its "a little better" levels and the
    levels that count as improved for the ROC analysis."""

    occasion: str
    minimal: tuple[float, ...]
    improved: tuple[float, ...]
    reference: str


@dataclass(frozen=True)
class SignificanceSettings:
    """Config `clinical_significance`: the definitions beside the primary (`mcid`) one, with the
    reliabilities, norms and anchor some of them read."""

    definitions: tuple[Definition, ...] = ()
    reliability: Mapping[str, Reliability] = field(default_factory=dict)
    norms: Mapping[str, Norms] = field(default_factory=dict)
    anchor: AnchorSettings | None = None

    @classmethod
    def from_config(cls, section: Mapping[str, Any] | None) -> SignificanceSettings:
        section = section or {}
        anchor = section.get("anchor")
        return cls(
            definitions=tuple(
                Definition.from_config(name, spec)
                for name, spec in (section.get("definitions") or {}).items()
            ),
            reliability={
                name: Reliability(
                    float(s["r"]),
                    s["reference"],
                    bool(s.get("assumption", False)),
                    float(s["r_post"]) if s.get("r_post") is not None else None,
                )  # fmt: skip
                for name, s in (section.get("reliability") or {}).items()
            },
            norms={
                name: Norms(
                    float(s["mean"]),
                    float(s["sd"]),
                    s["reference"],
                    bool(s.get("assumption", False)),
                )
                for name, s in (section.get("norms") or {}).items()
            },
            anchor=AnchorSettings(
                str(anchor["occasion"]),
                tuple(float(v) for v in anchor["minimal"]),
                tuple(float(v) for v in anchor["improved"]),
                anchor["reference"],
            )
            if anchor
            else None,
        )
