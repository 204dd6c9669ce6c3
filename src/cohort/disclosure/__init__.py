"""Disclosure control of everything published in results/: one suppression pattern over the
counts of all tables at once, of least information loss, so that no hidden cell can be recovered
from any combination of published cells, in any table; and the release request a data steward
reviews.

The subpackage owns the disclosure layer of rule `publish`. May import: `cohort.core`,
`cohort.analysis` (its small helpers: `rate_interval`), nothing that publishes or runs the workflow.
Its modules, in the order they act:
- `settings`: the config section (`DisclosureSettings`), what the rules know of the study
  (`Context`), the markers;
- `register`: every count the tables publish, by key, and the linear relations between them;
- `counts`, `significance_counts`, `group_counts`: one builder per table family, naming its
  counts and relations;
- `rules`: the rule of every published table (`TABLE_RULES`), the rendered files, figures and
  exemptions;
- `optimal`: secondary suppression of least loss (mixed-integer programming, HiGHS), with
  `pattern` (the greedy suppression) as its fallback and `audit` (the attacker's linear
  programs) to check every pattern;
- `checks`: each table's own checks (models too small, small levels, the threshold curve);
- `protect`: the pattern applied to the tables, and `protect_tables`, the entry point;
- `release`: the release request (ACRO's results format);
- `decisions`: the steward's decisions on it (approve / reject per output) and the outputs a
  rejection withholds (read by the Snakefile before any rule runs).

How it works (rule `publish`, `protect_tables`):
1. **One register of counts.** Each table's rule (`TABLE_RULES`) names the counts it publishes
   by a key that identifies the count itself, not its place: the responders at discharge are one
   key whether `responders.csv`, `responders_vs_paper.csv`, `missing_data_sensitivity.csv` or the
   threshold sweep prints them. The rule also states the linear relations between counts
   (responders + non-responders + could-not-improve = measured; measured + missing = N; the
   levels of a subgroup add up to the whole; flow stages minus exclusions; ...), including counts
   that are not published but implied (e.g. N minus those who received a category).
2. **Primary suppression**: a published count below `min_cell` (and zero, where zeros are
   declared disclosive) is hidden; an implied count below `min_cell` is sensitive too.
3. **Secondary suppression of least loss** (`disclosure.method: optimal`, the default): the
   cheapest set of further counts to hide, by weight (headline rates, N, Table 2 and the flow
   cost most; missing, could-not-improve and the curve's points least), such that no relation
   leaves a hidden count alone and the audit finds nothing (`cohort.disclosure.optimal`). The
   greedy suppression (`method: greedy`, and the fallback past `disclosure.time_limit`) hides,
   wherever a relation would leave a hidden or sensitive count as its only unknown, one more
   count of that relation.
4. **Audit by linear programming** (scipy's HiGHS): for every hidden or sensitive count, the
   smallest and largest value consistent with every published count and relation. A small count
   must be able to reach `min_cell`; no hidden count may be pinned to one value. A study of
   fewer than `min_cell` patients hides every count. (tests/disclosure_attack.py is an
   independent attacker on the published files.)
5. **Everything computed from a hidden count or a small group is hidden with it**: percentages,
   CIs, p-values, means, SDs, medians, quartiles; model estimates of a model with fewer than
   `min_cell` patients or events or fewer than 10 residual degrees of freedom. Min and max are
   single patients' values: dropped unless `disclosure.allow_min_max` is true.
6. **Dominance** of means (ACRO's NK and p% rules, `disclosure.dominance`): the analysis rules
   write the two largest values' shares of each mean's sum beside it
   (`cohort.analysis.tables.dominance_shares`); a dominated mean and what is computed from it are hidden
   (`protect.hide_dominated`), with the means that add up to the same published whole; the
   evidence is never published.
7. **Honest markers**: `<5` (a count below min_cell), `[c]` (hidden so that another cell cannot
   be recovered, or computed from such a cell), `[s]` (a statistic of fewer than min_cell
   patients, or computed from a count below min_cell), `[d]` (a dominated mean).
8. Optional **rounding** of every published count to a base (as OpenSAFELY does), with the
   percentages and Wilson CIs recomputed from the rounded counts.

Why not ACRO (PyPI `acro`, the output checker of trusted research environments) for the
checking itself: it checks one output at a time as the analyst makes it (wrapping pandas
crosstabs and statsmodels fits), with primary suppression per table; it has no model of the
relations between tables, which is what leaked here (a count hidden in one table recovered from
two others). Its per-output rules for counts and models (threshold, zeros, residual degrees of
freedom) are applied here too, and the release request is written in its results format
(`cohort.disclosure.release`) so that its tools read it.
"""

from cohort.disclosure.audit import audit
from cohort.disclosure.optimal import least_cost_pattern
from cohort.disclosure.pattern import Pattern, suppression_pattern
from cohort.disclosure.protect import TableReport, apply_pattern, protect_tables
from cohort.disclosure.register import Register, TableRule
from cohort.disclosure.rules import EXEMPTIONS, FIGURES, RENDERED_FROM, TABLE_RULES
from cohort.disclosure.settings import (
    MIN_RESIDUAL_DF,
    N_KEY,
    SECONDARY,
    SMALL_GROUP,
    Context,
    DisclosureError,
    DisclosureSettings,
    Key,
)

__all__ = [
    "EXEMPTIONS", "FIGURES", "MIN_RESIDUAL_DF", "N_KEY", "RENDERED_FROM", "SECONDARY",
    "SMALL_GROUP", "TABLE_RULES", "Context", "DisclosureError", "DisclosureSettings", "Key",
    "Pattern", "Register", "TableReport", "TableRule", "apply_pattern", "audit",
    "least_cost_pattern", "protect_tables", "suppression_pattern",
]  # fmt: skip
