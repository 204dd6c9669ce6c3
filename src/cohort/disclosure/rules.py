"""The rule of every published table (`TABLE_RULES`), and the published files that are rendered
from protected tables, exempt, or figures, each with why."""

from __future__ import annotations

from cohort.disclosure.checks import (
    _finish_ancova,
    _finish_baseline,
    _finish_lmm,
    _finish_missingness,
    _finish_predictors,
    _finish_sweep,
    fold_could_not_improve,
)
from cohort.disclosure.counts import (
    COURSE_PARTS,
    DIRECTION_PARTS,
    RATE_COLUMNS,
    _baseline,
    _combinations,
    _cooccurrence,
    _course,
    _directions,
    _dose,
    _flow,
    _interventions,
    _lmm,
    _missingness,
    _outcomes,
    _predictors,
    _responders,
    _sensitivity,
    _site_aggregates,
    _subgroups,
    _sweep,
    _tipping,
    _versus_paper,
)
from cohort.disclosure.group_counts import _ancova, _group_outcomes, _group_responders
from cohort.disclosure.register import TableRule
from cohort.disclosure.significance_counts import (
    AGREEMENT_CELLS,
    _significance_agreement,
    _significance_definitions,
    _significance_rates,
)

LEVEL_STATS = ("median", "q1", "q3", "mean", "sd")
SUM_COLUMNS = ("sum", "sum_squares", "sum_hex", "sum_squares_hex")  # site_aggregates.csv
CHANGE_STATS = (
    "median_change", "q1_change", "q3_change", "mean_change", "sd_change", "ci_low", "ci_high",
    "wilcoxon_statistic", "wilcoxon_p", "srm",
)  # fmt: skip
RESPONDER_RATE = {c: ("responders", "n") for c in RATE_COLUMNS}
DIRECTION_RATES = tuple(
    (f"{d}_pct", d, "n", f"{d}_ci_low_pct", f"{d}_ci_high_pct") for d in DIRECTION_PARTS
)
WILSON_RATE = (("pct", "responders", "n", "ci_low_pct", "ci_high_pct"),)  # recomputed if rounded

TABLE_RULES: dict[str, TableRule] = {
    "flow": TableRule(
        "STROBE flow: stage totals and exclusions (coded reasons only), related by stage - exclusions = next stage.",
        _flow,
    ),
    "baseline": TableRule(
        "Table 2: counts of levels with their valid n and N; statistics of variables with fewer than min_cell valid values hidden; min and max dropped unless allowed.",
        _baseline,
        derived={"pct": ("count", "valid_n"), "value": ("count",)},
        group_stats={"valid_n": (*LEVEL_STATS, "value")},
        dominance={"dominance": ("mean", "sd", "value")},
        rates=(("pct", "count", "valid_n", None, None),),
        min_max=("min", "max"),
        finish=_finish_baseline,
    ),
    "missingness": TableRule(
        "Missing values per variable and occasion; assessed vs lost: the shares as the counts they imply, the statistics of both groups hidden when one is below min_cell.",
        _missingness,
        derived={"pct": ("missing",)},
        rates=(("pct", "missing", "N", None, None),),
        # The two groups' means and the whole's (Table 2, outcomes.csv) give each other: a
        # dominated one among the three hides both groups'.
        dominance={
            prefix: ("completers", "lost", "smd", "p_value")
            for prefix in ("completers_dominance", "lost_dominance", "all_dominance")
        },
        finish=_finish_missingness,
    ),
    "outcomes": TableRule(
        "Each outcome per occasion: n measured, pairs, non-zero changes, complete cases; statistics of fewer than min_cell patients hidden.",
        _outcomes,
        derived={
            "wilcoxon_statistic": ("wilcoxon_n_nonzero",),
            "wilcoxon_p": ("wilcoxon_n_nonzero",),
        },
        group_stats={
            "n": LEVEL_STATS,
            "pairs_n": CHANGE_STATS,
            "complete_cases_n": ("statistic", "df", "p_value"),
        },
        dominance={
            "dominance": ("mean", "sd", "mean_change", "sd_change", "ci_low", "ci_high", "srm")
        },
    ),
    "site_aggregates": TableRule(
        "The sums another site pools with: n as outcomes.csv's (the measured, the pairs), the sums hidden with their n, for fewer than min_cell patients and where dominated.",
        _site_aggregates,
        derived={c: ("n",) for c in SUM_COLUMNS},
        group_stats={"n": SUM_COLUMNS},
        dominance={"dominance": SUM_COLUMNS},
    ),
    "responders": TableRule(
        "Responders, non-responders, could-not-improve and missing add up to the measured and to N; the same counts as in responders_vs_paper, missing_data_sensitivity, the subgroups and the sweep.",
        _responders,
        derived=RESPONDER_RATE,
        rates=WILSON_RATE,
    ),
    "responders_vs_paper": TableRule(
        "The responders and available-case n of responders.csv, with the same suppression.",
        _versus_paper,
        derived={
            c: ("responders", "n")
            for c in ("this_run_pct", "ci_low_pct", "ci_high_pct", "paper_within_ci")
        },
        rates=(("this_run_pct", "responders", "n", "ci_low_pct", "ci_high_pct"),),
    ),
    "missing_data_sensitivity": TableRule(
        "Complete case and non-responder imputation: the counts of responders.csv with the same suppression; multiple imputation: estimates over N.",
        _sensitivity,
        derived=RESPONDER_RATE,
        rates=WILSON_RATE,
    ),
    "tipping_point": TableRule(
        "Delta-adjusted multiple imputation: estimates over N; the shifted follow-ups are outcomes.csv's not measured, with the same suppression.",
        _tipping,
    ),
    "responder_subgroups": TableRule(
        "Each level's responder breakdown; levels add up to the whole (responders.csv) and their sizes to N (Table 2's counts).",
        _subgroups,
        derived=RESPONDER_RATE,
        rates=WILSON_RATE,
        prepare=fold_could_not_improve,
    ),
    "responder_course": TableRule(
        "Sustained, lost, late and never add up to n, and n with those not classified at both occasions to N; McNemar's p derives from lost and late.",
        _course,
        derived={
            **{f"{c}_{s}": (c, "n") for c in COURSE_PARTS for s in RATE_COLUMNS},
            "mcnemar_p": ("lost", "late"),
        },
        rates=tuple(
            (f"{c}_pct", c, "n", f"{c}_ci_low_pct", f"{c}_ci_high_pct") for c in COURSE_PARTS
        ),
    ),
    "responder_directions": TableRule(
        "Improved (the responders), unchanged and deteriorated, with could-not-improve and missing: the counts of responders.csv, non-responders split in two; shares of the responder population.",
        _directions,
        derived={
            **{f"{d}_{c}": (d, "n") for d in DIRECTION_PARTS for c in RATE_COLUMNS},
            "could_not_improve_pct": ("could_not_improve", "n"),
        },
        rates=(*DIRECTION_RATES, ("could_not_improve_pct", "could_not_improve", "n", None, None)),
    ),
    "threshold_sweep": TableRule(
        "Patients reaching each threshold among the measured (the point at a one-part MCID is the responders count); published only where each step carries at least min_cell patients.",
        _sweep,
        derived={c: ("reaching", "n") for c in RATE_COLUMNS},
        rates=(("pct", "reaching", "n", "ci_low_pct", "ci_high_pct"),),
        finish=_finish_sweep,
    ),
    "clinical_significance_definitions": TableRule(
        "Each definition's threshold with the start values' n (outcomes.csv), the HLM model's patients and the anchor's groups (adding up to the patients with the anchor); statistics of fewer than min_cell patients hidden.",
        _significance_definitions,
        group_stats={
            "baseline_n": (
                "baseline_mean",
                "baseline_sd",
                "sem",
                "s_diff",
                "cutoff",
                "threshold_absolute",
            ),
            "slope_n": ("fixed_slope", "slope_between_sd"),
            "anchor_minimal_n": (
                "anchor_minimal_mean",
                "anchor_minimal_ci_low",
                "anchor_minimal_ci_high",
                "threshold_absolute",
            ),
            **{
                n: (
                    "auc",
                    "auc_ci_low",
                    "auc_ci_high",
                    "roc_cutoff",
                    "sensitivity",
                    "specificity",
                    "threshold_absolute",
                    "anchor_group_difference",
                    "anchor_group_ci_low",
                    "anchor_group_ci_high",
                )
                for n in ("anchor_improved_n", "anchor_not_improved_n")
            },
        },
    ),
    "clinical_significance_rates": TableRule(
        "Each definition's responder breakdown, as responders.csv (the primary one's counts are its own), adding up to the measured and to N; multiple imputation: estimates over N.",
        _significance_rates,
        derived=RESPONDER_RATE,
        rates=WILSON_RATE,
    ),
    "clinical_significance_agreement": TableRule(
        "n is the measured; the four cells (adding up to n, and to each definition's responders) are published only where both definitions' responders and n are published and no cell is below min_cell, so that they relate to published counts only.",
        _significance_agreement,
        derived={
            "agreement_pct": ("both", "neither", "n"),
            **{c: AGREEMENT_CELLS for c in ("kappa", "kappa_ci_low", "kappa_ci_high")},
        },
    ),
    "interventions": TableRule(
        "Patients per category (with those who did not receive it, implied by N); session statistics of categories received by fewer than min_cell patients hidden.",
        _interventions,
        derived={"patients_pct": ("patients_n",), "patients": ("patients_n",)},
        group_stats={
            "patients_n": (
                "sessions_with_category_median",
                "sessions_with_category_q1",
                "sessions_with_category_q3",
                "sessions_with_category",
                "sessions_n",
                "share_of_sessions_pct",
            )
        },  # fmt: skip
        rates=(("patients_pct", "patients_n", "N", None, None),),
    ),
    "intervention_cooccurrence": TableRule(
        "Patients who received both categories (the diagonal: interventions.csv), with those who received one but not the other.",
        _cooccurrence,
    ),
    "intervention_combinations": TableRule(
        "Patients per set of categories; the sets (with the rest) add up to N.",
        _combinations,
        derived={"pct": ("n",)},
        rates=(("pct", "n", "N", None, None),),
    ),
    "dose": TableRule(
        "Sessions and programme months: statistics of fewer than min_cell patients hidden; min and max dropped unless allowed.",
        _dose,
        group_stats={"n": ("median", "q1", "q3", "value")},
        min_max=("min", "max"),
    ),
    "lmm": TableRule(
        "Mixed models (fixed effects, the occasion terms' covariances, variances): not published with fewer than min_cell patients or 10 residual df; estimated means of occasions with fewer than min_cell patients hidden.",
        _lmm,
        group_stats={"observed_n": ("estimated_mean", "se", "df", "ci_low", "ci_high")},
        finish=_finish_lmm,
    ),
    "predictors": TableRule(
        "Logistic models: not published with fewer than min_cell patients, events or non-events, or 10 residual df.",
        _predictors,
        finish=_finish_predictors,
    ),
    "group_outcomes": TableRule(
        "Each outcome per arm: n measured (arms add up to the measured); statistics of fewer than min_cell patients hidden.",
        _group_outcomes,
        group_stats={"n": LEVEL_STATS},
        dominance={"dominance": ("mean", "sd"), "whole_dominance": ("mean", "sd")},
        dominance_together=("outcome", "occasion"),
    ),
    "group_responders": TableRule(
        "Each arm's responder breakdown; arms add up to the whole (responders.csv).",
        _group_responders,
        derived=RESPONDER_RATE,
        rates=WILSON_RATE,
    ),
    "group_ancova": TableRule(
        "ANCOVA: not published with fewer than min_cell patients or 10 residual df.",
        _ancova,
        finish=_finish_ancova,
    ),
    "group_lmm": TableRule(
        "Group x occasion mixed models: not published with fewer than min_cell patients or 10 residual df.",
        _lmm,
        group_stats={"observed_n": ("estimated_mean", "se", "df", "ci_low", "ci_high")},
        finish=_finish_lmm,
    ),
}

# Published files that are not tables of counts, and why they need no rule of their own.
EXEMPTIONS: dict[str, str] = {
    "provenance.json": "hashes of files, package versions and the resolved config: no value of the data",
    "disclosure_report.md": "the number of cells hidden per table and the rules: no hidden value",
    "results.json": "the release request: per table its status, checks and the positions of its hidden cells, no hidden value",
}
# Published files rendered from tables after disclosure control (never from unprotected data).
RENDERED_FROM: dict[str, tuple[str, ...]] = {
    "baseline.md": ("baseline",),
    "baseline_vs_paper": ("baseline",),
    "summary.md": (
        "flow",
        "responders",
        "responders_vs_paper",
        "missing_data_sensitivity",
        "clinical_significance_rates",
        "clinical_significance_definitions",
        "lmm",
        "baseline",
    ),
}
RENDERED_FROM["legends.md"] = (  # each figure's legend: the notes of the table it is drawn from
    "flow", "outcomes", "lmm", "predictors", "threshold_sweep", "responder_directions",
    "responder_course", "clinical_significance_rates", "interventions", "intervention_cooccurrence",
    "tipping_point",
)  # fmt: skip
# The print forms (rule publication_tables, cohort.publish.publication): each table's HTML from that table
# alone, the Word document from all of them, the HTML pages from their Markdown.
RENDERED_FROM["html"] = ("tables/html/<table>.html: the published table <table> alone",)
RENDERED_FROM["manuscript_tables.docx"] = ("every published table",)
RENDERED_FROM["summary.html"] = ("summary.md",)
RENDERED_FROM["disclosure_report.html"] = ("disclosure_report.md",)
RENDERED_FROM["legends.html"] = ("legends.md",)
# A site's bundle for pooling (rule site_bundle): its published aggregates and responder
# breakdown (and lmm.csv's occasion terms and responder_subgroups.csv's levels where those are
# released), markers as published.
RENDERED_FROM["site_bundle.json"] = ("site_aggregates", "responders")
# Figures, and how each is protected: drawn from a published (protected) table, or checked here.
FIGURES: dict[str, str] = {
    "flow": "drawn from results/tables/flow.csv",
    "interventions": "drawn from results/tables/interventions.csv",
    "intervention_cooccurrence": "drawn from results/tables/intervention_cooccurrence.csv",
    "threshold_sweep": "drawn from results/tables/threshold_sweep.csv (merged steps only)",
    "outcome_trajectories": "drawn from results/tables/outcomes.csv (statistics of small groups hidden)",
    "outcome_changes": "box of quartiles only for groups of at least min_cell patients; no individual values",
    "lmm_means": "drawn from results/tables/lmm.csv",
    "predictors_forest": "drawn from results/tables/predictors.csv",
    "responder_directions": "drawn from results/tables/responder_directions.csv (hidden shares not drawn)",
    "responder_course": "drawn from results/tables/responder_course.csv (hidden shares not drawn)",
    "clinical_significance": "drawn from results/tables/clinical_significance_rates.csv (hidden rates not drawn)",
    "tipping_point": "drawn from results/tables/tipping_point.csv (estimates over N only)",
}
# The published tables each figure is drawn from (a figure is withheld with them: decisions).
FIGURE_TABLES: dict[str, tuple[str, ...]] = {
    "flow": ("flow",),
    "interventions": ("interventions",),
    "intervention_cooccurrence": ("intervention_cooccurrence", "interventions"),
    "threshold_sweep": ("threshold_sweep",),
    "outcome_trajectories": ("outcomes",),
    "outcome_changes": (),  # drawn by rule outcomes from patient-level data
    "lmm_means": ("lmm",),
    "predictors_forest": ("predictors",),
    "responder_directions": ("responder_directions",),
    "responder_course": ("responder_course",),
    "clinical_significance": ("clinical_significance_rates", "clinical_significance_definitions"),
    "tipping_point": ("tipping_point",),
}
