"""What disclosure control is configured with: the study's thresholds (`DisclosureSettings`), what
the rules know of the study (`Context`), the markers and the key of N."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cohort.errors import CohortError
from cohort.settings import McidRule

Key = tuple
N_KEY: Key = ("analysis set",)
SECONDARY = "[c]"
SMALL_GROUP = "[s]"
MIN_RESIDUAL_DF = 10  # models with fewer residual degrees of freedom are not published (ACRO)


MAX_AUDIT_ROUNDS = 200  # of hiding more after an audit; what is still exposed then stops publish


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
            f"{self.min_cell} patients, or computed from a count below {self.min_cell}.{rounding}{zeros}{minmax}"
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
