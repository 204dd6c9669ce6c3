"""The greedy secondary suppression, kept as the fallback of `cohort.disclosure.optimal`: hide one
more count wherever a relation leaves a hidden count alone, then audit, until nothing is exposed."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from cohort.disclosure.audit import audit
from cohort.disclosure.counts import HEADLINE_TABLES
from cohort.disclosure.register import Register
from cohort.disclosure.settings import MAX_AUDIT_ROUNDS, N_KEY, DisclosureSettings, Key


# --- The suppression pattern ----------------------------------------------------------------------
@dataclass
class Pattern:
    """Which keys are hidden, why (primary or secondary), and what could not be protected."""

    hidden: dict[Key, str]
    unprotectable: list[Key] = field(default_factory=list)
    method: str = "greedy"  # which suppression made it: optimal or greedy
    detail: str = "greedy suppression (disclosure.method: greedy)"  # in words, for the report


def suppression_pattern(reg: Register, settings: DisclosureSettings) -> Pattern:
    """Primary suppression, secondary suppression wherever a relation leaves one unknown, then
    the LP audit, repeated until no hidden or sensitive count can be pinned down."""
    if reg.values[N_KEY] < settings.min_cell:  # a study of fewer than min_cell: every count,
        return Pattern(  # zeros too (all share a trait)
            {k: "primary" for k in reg.published},
            detail=f"every count hidden: the study has fewer than {settings.min_cell} patients",
        )
    hidden = {k: "primary" for k in reg.published - reg.fixed if settings.small(reg.values[k])}
    sensitive = {k for k, v in reg.values.items() if k not in reg.published and settings.small(v)}
    relations_of: dict[Key, list[tuple[Key, ...]]] = defaultdict(list)
    for parts, total in reg.equations:
        for k in (*parts, total):
            relations_of[k].append((*parts, total))

    def visible(k: Key) -> bool:
        return k in reg.published and k not in hidden

    revealed: set[Key] = set()  # hidden, then found derivable anyway: published, never hidden again

    def cheapest(options: Iterable[Key]) -> Key | None:
        return _cheapest(options, reg, hidden, revealed, relations_of)

    cache: dict[frozenset, dict[Key, list[Key]]] = {}
    reach: dict[Key, tuple[float, float]] = {}
    seen_revealed: set[Key] = set()
    exposed: dict[Key, list[Key]] = {}
    for _ in range(MAX_AUDIT_ROUNDS):
        changed = True
        while changed:
            changed = False
            for parts, total in reg.equations:
                unknown = [k for k in (*parts, total) if not visible(k)]
                if len(unknown) == 1 and (unknown[0] in hidden or unknown[0] in sensitive):
                    pick = cheapest((*parts, total))
                    if pick is not None:
                        hidden[pick] = "secondary"
                        changed = True
                    elif hidden.get(unknown[0]) == "secondary":  # derivable: protects nothing
                        del hidden[unknown[0]]
                        revealed.add(unknown[0])
                        changed = True
        if revealed != seen_revealed:  # a cell published again narrows the feasible set
            reach.clear()
            seen_revealed = set(revealed)
        exposed = audit(reg, set(hidden), sensitive, settings.min_cell, cache, reach)
        added = False
        for key, binding in exposed.items():
            pick = cheapest(binding)
            if pick is not None:
                hidden[pick] = "secondary"
                added = True
            elif hidden.get(key) == "secondary":  # derivable anyway: hiding it protects nothing
                del hidden[key]
                revealed.add(key)
                added = True
        if not added:
            break
    if exposed:  # last resort: every published count related to what is still exposed
        for key in _related(reg, exposed):
            if visible(key) and key not in reg.fixed:
                hidden[key] = "secondary"
        exposed = audit(reg, set(hidden), sensitive, settings.min_cell)
    return Pattern(hidden, sorted(exposed, key=str))


def _cheapest(
    options: Iterable[Key],
    reg: Register,
    hidden: dict[Key, str],
    revealed: set[Key],
    relations_of: dict[Key, list[tuple[Key, ...]]],
) -> Key | None:
    """The count to hide: not a zero if it can be helped (a zero protects nothing by itself),
    then one outside the headline tables (flow, Table 2, responders), then the one that starts
    the fewest further suppressions (relations in which hiding it would leave it the only
    unknown), then the smallest."""

    def visible(k: Key) -> bool:
        return k in reg.published and k not in hidden

    def cascade(k: Key) -> int:
        return sum(all(visible(x) for x in keys if x != k) for keys in relations_of[k])

    usable = {
        k
        for k in options
        if visible(k) and k not in reg.fixed and k in reg.values and k not in revealed
    }
    if not usable:
        return None
    return min(
        usable,
        key=lambda k: (
            reg.values[k] == 0,
            bool(reg.tables_of[k] & HEADLINE_TABLES),
            cascade(k),
            reg.values[k],
            str(k),
        ),
    )


def _related(reg: Register, keys: Iterable[Key]) -> set[Key]:
    """Every count linked to `keys` by relations, through any count but a fixed one (N)."""
    relations: dict[Key, list[tuple[Key, ...]]] = defaultdict(list)
    for parts, total in reg.equations:
        for k in (*parts, total):
            relations[k].append((*parts, total))
    seen, frontier = set(keys), list(keys)
    while frontier:
        for relation in relations[frontier.pop()]:
            for k in relation:
                if k not in seen and k not in reg.fixed:
                    seen.add(k)
                    frontier.append(k)
    return seen
