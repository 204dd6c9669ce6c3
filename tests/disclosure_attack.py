"""An attacker on the published tables: every linear relation a reader can derive from the
tables' meaning (parts add up to totals, the same count printed in two tables, a curve that
cannot rise), solved by linear programming for the smallest and largest value of each hidden
count. Written from the published files alone, independently of cohort.disclosure's rules.
"""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import linprog

from cohort.io.outputs import read_csv

SECONDARY = "[c]"


def rounding_bin(shown: float, base: int, method: str) -> tuple[float, float]:
    """The true counts (as a closed interval) that print as `shown` under rounding to `base`:
    the nearest multiple with halves up (x in [shown - base/2, shown + base/2)), or OpenSAFELY's
    midpoint (ceil(x / base) * base - floor(base / 2) = shown). Counts are whole numbers."""
    if method == "midpoint":
        top = shown + base // 2
        return top - base + 1, top
    return math.ceil(shown - base / 2), math.ceil(shown + base / 2) - 1


class Attack:
    """Cells of the published tables as constants (shown) or unknowns (hidden), and relations."""

    def __init__(self, results: Path, min_cell: int, rounding: tuple[int, str] | None = None):
        self.tables = {p.stem: read_csv(p) for p in sorted((results / "tables").glob("*.csv"))}
        self.rounding = rounding  # (base, nearest | midpoint): a shown count is only its bin
        self.markers = {f"<{min_cell}", SECONDARY}
        self.index: dict[tuple, int] = {}
        self.hidden: list[tuple] = []
        self.eq: list[tuple[dict[int, float], float]] = []  # sum(c x) + const == 0
        self.le: list[tuple[dict[int, float], float]] = []  # sum(c x) + const <= 0

    def term(self, ref: tuple | str) -> tuple[int | None, float]:
        """(variable, 0) for a hidden cell or an unpublished quantity; (None, value) if shown."""
        if isinstance(ref, str):  # a quantity no table prints
            return self._var(("latent", ref)), 0.0
        table, row, column = ref
        value = self.tables[table].at[row, column]
        if str(value).strip() in self.markers:
            var = self._var(ref)
            if ref not in self.hidden:
                self.hidden.append(ref)
            return var, 0.0
        number = pd.to_numeric(pd.Series([value]), errors="coerce").iat[0]
        if pd.isna(number):
            return self._var(("blank", *ref)), 0.0
        if self.rounding and number != 0:  # a rounded count: an unknown within its bin
            key = ("rounded", *ref)
            if key not in self.index:
                low, high = rounding_bin(float(number), *self.rounding)
                var = self._var(key)
                self.le.append(({var: 1.0}, -high))
                self.le.append(({var: -1.0}, low))
            return self.index[key], 0.0
        return None, float(number)

    def _var(self, key: tuple) -> int:
        return self.index.setdefault(key, len(self.index))

    def relation(self, plus: list, minus: list, kind: str = "eq") -> None:
        """sum(plus) - sum(minus) == 0 (or <= 0)."""
        coefs: dict[int, float] = defaultdict(float)
        const = 0.0
        for refs, sign in ((plus, 1.0), (minus, -1.0)):
            for ref in refs:
                var, value = self.term(ref)
                if var is None:
                    const += sign * value
                else:
                    coefs[var] += sign
        (self.eq if kind == "eq" else self.le).append((dict(coefs), const))

    def same(self, a: tuple, b: tuple) -> None:
        self.relation([a], [b])

    def _witnesses(self, n: int, kwargs: dict, min_cell: int) -> list[np.ndarray]:
        """Feasible points that show as many hidden cells as possible to vary and to reach
        min_cell: the LPs that push the sum of the cells not yet shown so up and down, repeated
        while each round shows more (each point is a solution of every relation, so what it
        shows is proved; the cells it leaves get their own two LPs in `ranges`)."""
        points: list[np.ndarray] = []
        columns = np.array([self.index[ref] for ref in self.hidden])
        open_ = columns
        while len(open_):
            for sign in (1.0, -1.0):
                c = np.zeros(n)
                c[open_] = -sign  # linprog minimises: -sum pushes the open cells up
                res = linprog(c, **{**kwargs, "bounds": (0, 1e6)})
                if res.status == 0:
                    points.append(res.x)
            if not points:
                break
            seen = np.array(points)[:, columns]
            shown = (seen.max(axis=0) >= min_cell) & (seen.max(axis=0) - seen.min(axis=0) >= 0.5)
            still = columns[~shown]
            if len(still) >= len(open_):
                break
            open_ = still
        return points

    def ranges(self, min_cell: int = 0) -> list[tuple[tuple, float, float]]:
        """(cell, lowest, highest) of every hidden cell. With `min_cell`, a cell that two feasible
        points already show to vary and to reach min_cell is given as the range of those points
        (an LP per cell only where they do not settle it)."""
        n = len(self.index)
        if not self.hidden:
            return []
        a_eq = np.zeros((len(self.eq), n))
        b_eq = np.zeros(len(self.eq))
        for i, (coefs, const) in enumerate(self.eq):
            for var, c in coefs.items():
                a_eq[i, var] = c
            b_eq[i] = -const
        a_ub = np.zeros((len(self.le), n))
        b_ub = np.zeros(len(self.le))
        for i, (coefs, const) in enumerate(self.le):
            for var, c in coefs.items():
                a_ub[i, var] = c
            b_ub[i] = -const
        out = []
        kwargs = {"A_eq": a_eq, "b_eq": b_eq, "bounds": (0, None), "method": "highs"}
        if len(self.le):
            kwargs.update(A_ub=a_ub, b_ub=b_ub)
        points = []
        if min_cell:
            points = self._witnesses(n, kwargs, min_cell)
        for ref in self.hidden:
            j = self.index[ref]
            seen = [p[j] for p in points]
            if min_cell and seen and max(seen) >= min_cell and max(seen) - min(seen) >= 0.5:
                out.append((ref, min(seen), max(seen)))
                continue
            c = np.zeros(n)
            c[self.index[ref]] = 1
            high = linprog(-c, **kwargs)
            assert high.status in (0, 3), (
                f"the published tables are inconsistent at {ref}: {high.message}"
            )
            top = math.inf if high.status == 3 else -high.fun
            if min_cell and seen and top >= min_cell and top - min(seen) >= 0.5:
                out.append((ref, min(seen), top))  # a known point already lies 0.5 below
                points += [high.x] if high.status == 0 else []
                continue
            low = linprog(c, **kwargs)
            assert low.status == 0, f"the published tables are inconsistent at {ref}: {low.message}"
            out.append((ref, low.fun, top))
            points += [low.x] + ([high.x] if high.status == 0 else [])
        return out


def _rows(attack: Attack, name: str) -> pd.DataFrame:
    """A published table, or an empty one with the columns the relations read."""
    columns = [
        "variable",
        "subgroup",
        "outcome",
        "occasion",
        "scale",
        "level",
        "threshold",
        "key",
        "kind",
        "code",
    ]
    return attack.tables.get(name, pd.DataFrame(columns=columns))


def attack_results(
    results: Path,
    min_cell: int,
    mcid: dict[str, dict],
    exact: bool = False,
    rounding: tuple[int, str] | None = None,
) -> list[tuple[tuple, float, float]]:
    """The feasible range of every hidden count of a results folder (with `rounding`, each shown
    count is known only to its rounding bin)."""
    return build_attack(results, min_cell, mcid, rounding).ranges(0 if exact else min_cell)


def build_attack(
    results: Path, min_cell: int, mcid: dict[str, dict], rounding: tuple[int, str] | None = None
) -> Attack:
    """Every relation of a results folder's tables, ready to be solved (Attack.ranges)."""
    at = Attack(results, min_cell, rounding)
    flow = _rows(at, "flow")
    N: tuple | None = None
    if not flow.empty:
        current, pending = None, []
        for i, row in flow.iterrows():
            ref = ("flow", i, "n")
            if row["key"] == "analysis_set":
                N = ref
            if row["kind"] == "stage" and not str(row["key"]).startswith("assessed_"):
                if current is not None:
                    at.relation([current], [*pending, ref])
                current, pending = ref, []
            elif row["kind"] == "excluded" and not str(row["key"]).startswith("missing_"):
                pending.append(ref)
        for i, row in flow.iterrows():
            if str(row["key"]).startswith("assessed_"):
                j = flow.index[flow["key"] == str(row["key"]).replace("assessed_", "missing_")]
                at.relation([N], [("flow", i, "n"), ("flow", j[0], "n")])

    # Responders: the breakdown adds up; both denominators' rows print the same counts.
    resp = _rows(at, "responders")
    parts = ("responders", "non_responders", "could_not_improve", "missing")
    first: dict[tuple, int] = {}
    for i, row in resp.iterrows():
        key = (row["outcome"], row["occasion"])
        at.relation([("responders", i, "N")], [("responders", i, p) for p in parts])
        if row["denominator"] == "available cases":
            at.relation([("responders", i, "n")], [("responders", i, p) for p in parts[:3]])
        else:
            at.same(("responders", i, "n"), ("responders", i, "N"))
        if N is not None:
            at.same(("responders", i, "N"), N)
        if key in first:
            for p in parts:
                at.same(("responders", i, p), ("responders", first[key], p))
        else:
            first[key] = i
    available = {
        (r["outcome"], r["occasion"]): i
        for i, r in resp.iterrows()
        if r["denominator"] == "available cases"
    }
    for i, row in _rows(at, "responders_vs_paper").iterrows():
        j = available[(row["outcome"], row["occasion"])]
        at.same(("responders_vs_paper", i, "responders"), ("responders", j, "responders"))
        at.same(("responders_vs_paper", i, "n"), ("responders", j, "n"))
    # Three directions: improved is the responders count; unchanged + deteriorated the
    # non-responders; could-not-improve and missing as printed in responders.csv.
    for i, row in _rows(at, "responder_directions").iterrows():
        j = available[(row["outcome"], row["occasion"])]
        for mine, theirs in (
            ("improved", "responders"),
            ("could_not_improve", "could_not_improve"),
            ("missing", "missing"),
            ("n", "n"),
            ("N", "N"),
        ):
            at.same(("responder_directions", i, mine), ("responders", j, theirs))
        at.relation(
            [("responders", j, "non_responders")],
            [("responder_directions", i, "unchanged"), ("responder_directions", i, "deteriorated")],
        )
    for i, row in _rows(at, "missing_data_sensitivity").iterrows():
        if row["analysis"] == "multiple imputation":
            continue
        j = available[(row["outcome"], row["occasion"])]
        at.same(("missing_data_sensitivity", i, "responders"), ("responders", j, "responders"))
        target = (
            ("responders", j, "n") if row["analysis"] == "complete case" else ("responders", j, "N")
        )
        at.same(("missing_data_sensitivity", i, "n"), target)

    # Outcomes and missing values: measured + missing = N; pairs = the responders' measured.
    outcomes = _rows(at, "outcomes")
    missing = _rows(at, "missingness")
    missing_rows = {
        (r["variable"], r["occasion"]): i
        for i, r in missing.iterrows()
        if r["section"] == "missing"
    }
    for i, row in outcomes.iterrows():
        if row["section"] == "level":
            j = missing_rows.get((row["outcome"], row["occasion"]))
            if j is not None and N is not None:
                at.relation([N], [("outcomes", i, "n"), ("missingness", j, "missing")])
        elif row["section"] == "change" and (row["outcome"], row["occasion"]) in available:
            at.same(
                ("outcomes", i, "pairs_n"),
                ("responders", available[(row["outcome"], row["occasion"])], "n"),
            )
    baseline = _rows(at, "baseline")
    if not outcomes.empty:
        outcomes[outcomes["section"] == "level"]["occasion"].iat[0]
    counts: dict[tuple, tuple] = {}
    for variable, rows in baseline.groupby("variable", sort=False):
        valid = ("baseline", rows.index[0], "valid_n")
        for i in rows.index[1:]:
            at.same(("baseline", i, "valid_n"), valid)
        j = missing_rows.get((variable, "baseline"))
        if j is not None and N is not None:
            at.relation([N], [valid, ("missingness", j, "missing")])
        level_rows = [i for i in rows.index if str(rows.at[i, "count"]).strip() not in ("", "nan")]
        if len(level_rows) > 1:
            at.relation([valid], [("baseline", i, "count") for i in level_rows])
            for i in level_rows:
                counts[(variable, str(rows.at[i, "level"]))] = ("baseline", i, "count")
        elif level_rows:
            at.relation([("baseline", level_rows[0], "count")], [valid], "le")

    # Subgroups: each level's breakdown adds up to its size; levels add up to the whole.
    # Where the table prints no could-not-improve column, its non-responders include them.
    sub = _rows(at, "responder_subgroups")
    folded = not sub.empty and "could_not_improve" not in sub.columns
    level_parts = tuple(p for p in parts if not (folded and p == "could_not_improve"))
    for i, row in sub.iterrows():
        at.relation(
            [("responder_subgroups", i, "patients_in_level")],
            [("responder_subgroups", i, p) for p in level_parts],
        )
        at.relation(
            [("responder_subgroups", i, "n")],
            [("responder_subgroups", i, p) for p in level_parts if p != "missing"],
        )
        if (row["subgroup"], row["level"]) in counts:
            at.same(
                ("responder_subgroups", i, "patients_in_level"),
                counts[(row["subgroup"], row["level"])],
            )
        if row["level"] == "(missing)" and (row["subgroup"], "baseline") in missing_rows:
            at.same(
                ("responder_subgroups", i, "patients_in_level"),
                ("missingness", missing_rows[(row["subgroup"], "baseline")], "missing"),
            )
    for (_, outcome, occasion), rows in sub.groupby(
        ["subgroup", "outcome", "occasion"], sort=False
    ):
        j = available.get((outcome, occasion))
        for p in (*level_parts, "n"):
            if j is not None:
                whole = [("responders", j, p)]
                if folded and p == "non_responders":
                    whole.append(("responders", j, "could_not_improve"))
                at.relation(whole, [("responder_subgroups", i, p) for i in rows.index])
        if N is not None:
            at.relation([N], [("responder_subgroups", i, "patients_in_level") for i in rows.index])

    for i, _ in _rows(at, "responder_course").iterrows():
        course = "responder_course"
        at.relation(
            [(course, i, "n")], [(course, i, c) for c in ("sustained", "lost", "late", "never")]
        )
        at.relation([(course, i, "N")], [(course, i, "n"), (course, i, "not_classified_at_both")])
        if N is not None:
            at.same((course, i, "N"), N)

    # Clinical significance: each definition's breakdown adds up to N, its measured (R + NR +
    # CNI) is responders.csv's, the primary one's counts are responders.csv's; an agreement
    # table's cells add up to the measured, and to each definition's responders.
    rates = _rows(at, "clinical_significance_rates")
    table = "clinical_significance_rates"
    responders_under: dict[tuple, int] = {}
    for i, row in rates.iterrows():
        j = available.get((row["outcome"], row["occasion"]))
        if row.get("analysis") not in (
            "available cases",
            "all in analysis set, missing = non-responder",
        ):
            continue
        at.relation([(table, i, "N")], [(table, i, p) for p in parts])
        if N is not None:
            at.same((table, i, "N"), N)
        if j is None:
            continue
        at.relation([(table, i, p) for p in parts[:3]], [("responders", j, p) for p in parts[:3]])
        at.same((table, i, "missing"), ("responders", j, "missing"))
        if row["analysis"] == "available cases":
            at.same((table, i, "n"), ("responders", j, "n"))
            responders_under[(row["definition"], row["outcome"], row["occasion"])] = i
        else:
            at.same((table, i, "n"), ("responders", j, "N"))
        if row["definition"] == "mcid":
            for p in parts:
                at.same((table, i, p), ("responders", j, p))
    agree = "clinical_significance_agreement"
    for i, row in _rows(at, agree).iterrows():
        cells = ("both", "first_only", "second_only", "neither")
        at.relation([(agree, i, "n")], [(agree, i, c) for c in cells])
        j = available.get((row["outcome"], row["occasion"]))
        if j is not None:
            at.relation([(agree, i, "n")], [("responders", j, p) for p in parts[:3]])
        for definition, only in ((row["first"], "first_only"), (row["second"], "second_only")):
            k = responders_under.get((definition, row["outcome"], row["occasion"]))
            if k is not None:
                at.relation([(table, k, "responders")], [(agree, i, "both"), (agree, i, only)])
    for i, row in _rows(at, "clinical_significance_definitions").iterrows():
        definitions = "clinical_significance_definitions"
        if pd.notna(row.get("anchor_n")) and str(row.get("anchor_n")).strip() != "":
            at.relation(
                [(definitions, i, "anchor_n")],
                [(definitions, i, "anchor_improved_n"), (definitions, i, "anchor_not_improved_n")],
            )
            at.relation(
                [(definitions, i, "anchor_minimal_n")], [(definitions, i, "anchor_n")], "le"
            )

    # The sweep: a non-increasing curve within the measured; the point at the MCID is the
    # responders count; the absolute scale's n is the responders' n.
    sweep = _rows(at, "threshold_sweep")
    for (outcome, occasion, scale), rows in sweep.groupby(
        ["outcome", "occasion", "scale"], sort=False
    ):
        rows = rows.sort_values("threshold")
        j = available.get((outcome, occasion))
        rule = mcid.get(outcome, {})
        for i in rows.index:
            at.relation([("threshold_sweep", i, "reaching")], [("threshold_sweep", i, "n")], "le")
            if scale == "absolute" and j is not None:
                at.same(("threshold_sweep", i, "n"), ("responders", j, "n"))
            one_part = (
                rule.get(scale) is not None
                and rule.get("percent" if scale == "absolute" else "absolute") is None
            )
            if (
                one_part
                and j is not None
                and math.isclose(float(rows.at[i, "threshold"]), float(rule[scale]))
            ):
                at.same(("threshold_sweep", i, "reaching"), ("responders", j, "responders"))
        for a, b in zip(rows.index[:-1], rows.index[1:], strict=True):
            at.relation(
                [("threshold_sweep", b, "reaching")], [("threshold_sweep", a, "reaching")], "le"
            )

    # Interventions: who received a category (the co-occurrence diagonal), pairs within them.
    cats = _rows(at, "interventions")
    co = _rows(at, "intervention_cooccurrence")
    if not co.empty:
        codes = [c for c in co.columns if c not in ("code", "category")]
        row_of = {str(r["code"]): i for i, r in co.iterrows()}
        for a in codes:
            for b in codes:
                if a < b:
                    at.same(
                        ("intervention_cooccurrence", row_of[a], b),
                        ("intervention_cooccurrence", row_of[b], a),
                    )
                if a != b:
                    at.relation(
                        [("intervention_cooccurrence", row_of[a], b)],
                        [("intervention_cooccurrence", row_of[a], a)],
                        "le",
                    )
        for i, row in cats.iterrows():
            at.same(
                ("interventions", i, "patients_n"),
                ("intervention_cooccurrence", row_of[str(row["code"])], str(row["code"])),
            )
    for i, _ in cats.iterrows():
        if N is not None:
            at.relation([("interventions", i, "patients_n")], [N], "le")
    combos = _rows(at, "intervention_combinations")
    if not combos.empty and N is not None:
        at.relation([N], [("intervention_combinations", i, "n") for i in combos.index])
    return at


def add_pooled_relations(at: Attack, pooled: Path, others: list[dict]) -> int:
    """The relations a coordinator's pooled tables add for the site whose tables `at` holds:
    each published pooled count is that site's cell plus the other sites' published cells
    (pooled_responders: the responder breakdown; pooled_outcomes: the n of site_aggregates).
    Returns how many relations were added."""
    added = 0
    tables = {"pooled_responders": ("responders", ("responders", "non_responders", "could_not_improve", "missing", "n", "N")),
              "pooled_outcomes": ("site_aggregates", ("n",))}  # fmt: skip
    for name, (site_table, columns) in tables.items():
        pooled_rows = read_csv(pooled / "tables" / f"{name}.csv")
        site_rows = _rows(at, site_table)
        for _, row in pooled_rows.iterrows():
            key = {k: row[k] for k in ("section", "outcome", "occasion") if k in row.index}
            match = site_rows[(site_rows[list(key)] == pd.Series(key)).all(axis=1)]
            if site_table == "responders":
                match = match[match["denominator"] == "available cases"]
            for column in columns:
                shown = pd.to_numeric(pd.Series([row[column]]), errors="coerce").iat[0]
                if pd.isna(shown):
                    continue
                rest = 0.0
                for b in others:
                    records = b["responders"] if site_table == "responders" else b["aggregates"]
                    r = next(r for r in records if all(r[k] == v for k, v in key.items()))
                    rest += float(r[column])
                var, value = at.term((site_table, match.index[0], column))
                coefs = {var: 1.0} if var is not None else {}
                at.eq.append((coefs, (value if var is None else 0.0) + rest - float(shown)))
                added += 1
    return added


def exposed(
    results: Path, min_cell: int, mcid: dict[str, dict], rounding: tuple[int, str] | None = None
) -> list[str]:
    """Hidden counts the attacker pins to one value or proves to be below min_cell."""
    problems = []
    for ref, low, high in attack_results(results, min_cell, mcid, rounding=rounding):
        if high - low < 0.5 or high < min_cell - 1e-6:
            problems.append(f"{ref[0]}.csv row {ref[1] + 1} {ref[2]}: between {low:g} and {high:g}")
    return problems
