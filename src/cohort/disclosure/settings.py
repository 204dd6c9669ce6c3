"""What disclosure control is configured with: the study's thresholds (`DisclosureSettings`), what
the rules know of the study (`Context`), the markers and the key of N."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cohort.core.errors import CohortError
from cohort.core.settings import McidRule

Key = tuple
N_KEY: Key = ("analysis set",)
SECONDARY = "[c]"
SMALL_GROUP = "[s]"
DOMINATED = "[d]"
SHARE_TOLERANCE = 1e-9
MIN_RESIDUAL_DF = 10  # models with fewer residual degrees of freedom are not published (ACRO)


MAX_AUDIT_ROUNDS = 200  # of hiding more after an audit; what is still exposed then stops publish


def _dominance(section: dict[str, Any] | None) -> dict[str, Any]:
    """The dominance settings of the config (null: off; missing keys: ACRO's defaults)."""
    if section is None:
        return {"dominance": False}
    return {
        "dominance": True,
        "nk_n": int(section.get("nk_n", 2)),
        "nk_k": float(section.get("nk_k", 0.9)),
        "p_ratio": float(section.get("p_ratio", 0.1)),
    }


class DisclosureError(CohortError):
    """A table cannot be published safely (no rule, or a count no suppression can protect)."""


@dataclass(frozen=True)
class DisclosureSettings:
    """The config section `disclosure`: threshold, secondary suppression, rounding, zeros,
    min/max."""

    min_cell: int = 5
    rounding: int | None = None
    rounding_method: str = "nearest"  # nearest multiple of the base, or midpoint of its bin
    zeros_disclosive: bool = False
    allow_min_max: bool = False
    method: str = "optimal"  # secondary suppression: optimal (least loss) or greedy
    time_limit: float = 120.0  # seconds for the optimal pattern; past it, the greedy one
    # Dominance of a mean (ACRO's defaults): hidden where its nk_n largest values make up at
    # least nk_k of the sum (NK rule), or the values other than the two largest less than
    # p_ratio of the largest (p% rule); dominance: False turns both off.
    dominance: bool = True
    nk_n: int = 2
    nk_k: float = 0.9
    p_ratio: float = 0.1

    @classmethod
    def from_config(cls, section: dict[str, Any]) -> DisclosureSettings:
        return cls(
            min_cell=int(section["min_cell"]),
            rounding=section.get("rounding"),
            rounding_method=str(section.get("rounding_method", "nearest")),
            zeros_disclosive=bool(section.get("zeros_disclosive", False)),
            allow_min_max=bool(section.get("allow_min_max", False)),
            method=str(section.get("method", "optimal")),
            time_limit=float(section.get("time_limit", 120.0)),
            **_dominance(section.get("dominance", {})),
        )

    def dominated(self, top1: float, top2: float) -> str:
        """Which dominance rule a mean with these largest shares of its sum fails ('' none)."""
        if not self.dominance or not top1 > 0:
            return ""
        # Shares of the sum carry rounding error: a tie with the limit is judged as in exact
        # arithmetic (ACRO: NK fails at >= k, p% at < p).
        if (top1 if self.nk_n == 1 else top1 + top2) >= self.nk_k - SHARE_TOLERANCE:
            return "nk"
        if (1 - top1 - top2) / top1 < self.p_ratio - SHARE_TOLERANCE:
            return "p"
        return ""

    def dominance_words(self) -> str:
        """The dominance rules in words (footer and report)."""
        if not self.dominance:
            return "not checked (disclosure.dominance: null)"
        return (
            f"a mean is hidden where its {self.nk_n} largest values make up {self.nk_k:.0%} or more of "
            f"the sum (NK rule), or the values other than the two largest less than {self.p_ratio:.0%} "
            "of the largest (p% rule)"
        )

    def rounding_words(self) -> str:
        """How counts are rounded, in words."""
        if not self.rounding:
            return "not at all"
        if self.rounding_method == "midpoint":
            return f"to the midpoint of their bin of {self.rounding} (midpoint {self.rounding} rounding)"
        return f"to the nearest {self.rounding}"

    def residual_risk(self) -> str:
        """What rounding still lets a reader learn (the disclosure report)."""
        if not self.rounding:
            return "no rounding: every published count is exact."
        base = self.rounding
        if self.rounding_method == "midpoint":
            width = f"a published {base - base // 2} stands for 1 to {base}, and any other for {base} true values"
        else:
            width = f"a published count is within {base / 2:g} of the true one (halves rounded up)"
        return (
            f"{width}; rounded parts need not add up to their rounded total, so a reader who "
            f"adds k published counts knows their true sum to within k times that, and can "
            "narrow a count only by combining several such bounds; counts are suppressed "
            "below min_cell before rounding, so rounding adds to suppression, it does not replace it."
        )

    @property
    def primary(self) -> str:
        return f"<{self.min_cell}"

    def small(self, value: float) -> bool:
        """A count that is disclosive by itself."""
        return (0 < value < self.min_cell) or (self.zeros_disclosive and value == 0)

    def footer(self) -> str:
        """The footer line every protected output carries."""
        rounding = (
            f" Counts rounded {self.rounding_words()}, percentages and CIs recomputed from the rounded counts."
            if self.rounding
            else ""
        )
        zeros = " Zero counts are treated as disclosive." if self.zeros_disclosive else ""
        minmax = (
            " Min and max are published by the study's explicit choice (disclosure.allow_min_max): each is one patient's value."
            if self.allow_min_max
            else ""
        )
        return (
            f"Disclosure control (min_cell = {self.min_cell}): {self.primary} = a count below {self.min_cell}; "
            f"{SECONDARY} = hidden so that another hidden cell cannot be recovered from the published "
            f"tables, or computed from such a cell; {SMALL_GROUP} = a statistic of fewer than "
            f"{self.min_cell} patients, or computed from a count below {self.min_cell}"
            + (
                f"; {DOMINATED} = a mean dominated by its largest values (NK rule "
                f"{self.nk_n}/{self.nk_k:.0%}, p% rule {self.p_ratio:.0%})"
                if self.dominance
                else ""
            )
            + f".{rounding}{zeros}{minmax}"
        )


@dataclass(frozen=True)
class Context:
    """What the table rules need to know about the study to name and relate its counts."""

    n_analysis: int
    handling: str = "non_responder"  # could-not-improve patients: non_responder or exclude
    mcid: dict[str, McidRule] = field(default_factory=dict)  # outcome -> its MCID rule
    shown_level: dict[str, str] = field(default_factory=dict)  # Table 2 rows of one level
    occasions: tuple[str, ...] = ()
    confidence_level: float = 0.95
    disclosure: DisclosureSettings | None = None  # set by protect_tables
