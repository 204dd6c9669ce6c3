"""One function per Snakemake rule: read the rule's inputs, call the pure functions of the
package, write the rule's outputs. Scripts in scripts/ only pass snakemake's input, output and
params to these."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pandas as pd

from cohort.cleaning import check_extract, clean_extract, read_extract, unaccounted_rows
from cohort.contract import load_codebook, load_contract
from cohort.derivations import derive_tables, patient_flow
from cohort.disclosure import TABLE_RULES, suppress
from cohort.errors import CohortError
from cohort.groups import (
    ancova,
    fit_quietly,
    group_by_occasion_lmm,
    levels_by_group,
    responders_by_group,
)
from cohort.interventions import category_table, combination_table, cooccurrence_matrix, dose_table
from cohort.models import (
    analyse_imputed,
    completed_data_sets,
    completers_vs_lost,
    imputation_variables,
    impute_part,
    lmm_tables,
    missingness_table,
    pooled_predictors,
    predictor_table,
    predictor_terms,
    sensitivity_table,
)
from cohort.outcomes import friedman_tests, outcome_changes, outcome_levels
from cohort.outputs import read_csv, read_notes, table_notes, write_csv
from cohort.privacy import guard_identifiers
from cohort.provenance import provenance, write_provenance
from cohort.responders import (
    classify_all,
    composites,
    responder_rates,
    stability,
    subgroup_rates,
    threshold_sweep,
    versus_paper,
)
from cohort.summary import summary_markdown
from cohort.tables import baseline_markdown, baseline_table, baseline_vs_paper

log = logging.getLogger(__name__)


def clean_stage(
    extract_dir: str, contract_path: str, settings: dict[str, Any], out: dict[str, str]
) -> None:
    """Rule `clean`: raw extract -> typed tables, cleaning log, derived patient table, flow."""
    from cohort import figures  # matplotlib (0.5 s): imported only by rules that draw

    contract = load_contract(contract_path, settings)
    files = check_extract(extract_dir, contract)
    raw = read_extract(extract_dir, contract)
    for name, df in raw.items():
        log.info("read %s: %d rows, %d columns", files[name], len(df), df.shape[1] - 1)
    guard_identifiers(
        raw,
        {name: str(path) for name, path in files.items()},
        settings["cleaning"]["allow_identifiers"],
    )
    cleaned = clean_extract(raw, contract, settings)
    problems = unaccounted_rows(raw, cleaned)
    if problems:  # the invariant: a bug, never a user fault
        raise AssertionError(f"raw rows neither kept nor logged: {problems}")
    for (rule, action), n in cleaned.log.groupby(["rule", "action"]).size().items():
        log.info("cleaning: %s -> %s: %d", rule, action, n)
    codes = (
        list(load_codebook(settings["interventions"]["codebook"]))
        if "interventions" in settings
        else []
    )
    patients, sessions, assessments = derive_tables(cleaned.tables, settings, codes)
    flow = patient_flow(patients, settings, has_sessions=sessions is not None)
    if not patients["analysis_set"].any():
        raise CohortError(
            "no patient is in the analysis set (included, with a session and a start assessment): "
            + "; ".join(f"{r['label']}: {r['n']}" for _, r in flow.iterrows())
        )
    log.info(
        "analysis set: %d of %d referred patients",
        int(patients["analysis_set"].sum()),
        len(patients),
    )

    Path(out["patients"]).parent.mkdir(parents=True, exist_ok=True)
    patients.to_parquet(out["patients"], index=False)
    (sessions if sessions is not None else pd.DataFrame()).to_parquet(out["sessions"], index=False)
    assessments.to_parquet(out["assessments"], index=False)
    write_csv(cleaned.log, out["cleaning_log"])
    notes = table_notes(
        settings,
        "Flow of patients from the raw extract to the analysis set; "
        "assessed = at least one outcome measured at that occasion.",
    )
    write_csv(flow, out["flow"], notes)
    figures.save_figure(figures.flow_diagram(flow, " ".join(notes)), out["flow_figure"])


def baseline_stage(patients_path: str, settings: dict[str, Any], out: dict[str, str]) -> None:
    """Rule `baseline`: Table 2 of the paper (before disclosure control)."""
    analysis = _analysis_set(patients_path)
    table = baseline_table(analysis, settings["baseline"])
    notes = table_notes(
        settings,
        f"N = {len(analysis)} (analysis set). n (%) of valid values; valid n given where below N. "
        "Quartiles by linear interpolation (Hyndman-Fan type 7); SD with n - 1.",
    )
    write_csv(table, out["table"], notes)


def _analysis_set(patients_path: str) -> pd.DataFrame:
    patients = pd.read_parquet(patients_path)
    analysis = patients[patients["analysis_set"]].reset_index(drop=True)
    log.info(
        "read %s: %d patients, analysis set n = %d", patients_path, len(patients), len(analysis)
    )
    return analysis


def interventions_stage(
    patients_path: str,
    sessions_path: str,
    codebook_path: str,
    settings: dict[str, Any],
    out: dict[str, str],
) -> None:
    """Rule `interventions`: categories per patient and session, dose, combinations (their
    figures are drawn by `publish`, from the protected tables)."""
    analysis = _analysis_set(patients_path)
    sessions = pd.read_parquet(sessions_path)
    codebook = load_codebook(codebook_path)
    n = len(analysis)
    categories = category_table(analysis, sessions, codebook)
    log.info(
        "interventions: %d sessions of the analysis set", int(categories["sessions_total"].iat[0])
    )
    base = f"N = {n} (analysis set). "
    write_csv(
        categories,
        out["categories"],
        table_notes(
            settings,
            base + "patients: received the category in at least one session, n (% of N); "
            "sessions_with_category: among those patients, sessions in which it was used, median [Q1, Q3]; "
            "share_of_sessions_pct: % of all sessions of the analysis set.",
        ),
    )
    write_csv(
        dose_table(analysis),
        out["dose"],
        table_notes(
            settings,
            base + "median [Q1, Q3] (min-max); programme duration from first to last session, "
            "months of 365.25/12 days; quartiles by linear interpolation.",
        ),
    )
    top = settings["interventions"]["top_combinations"]
    write_csv(
        combination_table(analysis, codebook, top),
        out["combinations"],
        table_notes(
            settings,
            base + f"The {top} most common sets of categories received per patient (ties kept), "
            "n (% of N); the last line gathers the rest.",
        ),
    )
    matrix = cooccurrence_matrix(analysis, codebook)
    write_csv(
        matrix,
        out["cooccurrence"],
        table_notes(
            settings,
            base
            + "Patients who received both categories; the diagonal is who received the category.",
        ),
    )


def outcomes_stage(patients_path: str, settings: dict[str, Any], out: dict[str, str]) -> None:
    """Rule `outcomes`: each outcome at each occasion, paired change from baseline, Friedman."""
    from cohort import figures  # matplotlib (0.5 s): imported only by rules that draw

    analysis = _analysis_set(patients_path)
    level = settings["statistics"]["confidence_level"]
    levels = outcome_levels(analysis, settings)
    changes = outcome_changes(analysis, settings, level)
    friedman = friedman_tests(analysis, settings)
    for _, row in changes.iterrows():
        log.info(
            "%s %s: %d pairs, Wilcoxon %s",
            row["outcome"],
            row["comparison"],
            row["pairs_n"],
            row["wilcoxon_method"],
        )
    table = pd.concat(
        [
            levels.assign(section="level"),
            changes.assign(section="change"),
            friedman.assign(section="friedman"),
        ],
        ignore_index=True,
    )
    table = table[["section", *[c for c in table.columns if c != "section"]]]
    write_csv(
        table,
        out["table"],
        table_notes(
            settings,
            f"N = {len(analysis)} (analysis set). level: n measured, median [Q1, Q3], mean (SD). "
            "change: later occasion minus baseline among patients measured at both (pairs_n); mean change "
            f"with {level:.0%} CI (t); Wilcoxon signed-rank (zeros dropped); SRM = mean / SD of change. "
            "friedman: all occasions, complete cases. `better` gives the direction of improvement.",
        ),
    )
    occasion_labels = {o["name"]: o["label"] for o in settings["occasions"]}
    caption = " ".join(
        table_notes(settings, f"Analysis set N = {len(analysis)}; n = patients measured.")
    )
    figures.save_figure(
        figures.trajectories(
            levels,
            occasion_labels,
            {name: spec["range"] for name, spec in settings["outcomes"].items()},
            caption + " Median and interquartile range.",
        ),
        out["trajectories"],
    )
    baseline = settings["occasions"][0]["name"]
    individual = {}
    for _, row in changes.iterrows():
        pair = analysis[
            [f"{row['outcome']}_{baseline}", f"{row['outcome']}_{row['occasion']}"]
        ].dropna()
        individual[(row["outcome"], row["occasion"])] = (
            pair.iloc[:, 1] - pair.iloc[:, 0]
        ).to_numpy()
    labels = {name: spec["label"] for name, spec in settings["outcomes"].items()}
    figures.save_figure(
        figures.change_distributions(individual, labels, occasion_labels, caption),
        out["changes"],
    )


def responders_stage(patients_path: str, settings: dict[str, Any], out: dict[str, str]) -> None:
    """Rule `responders`: MCID classification, rates, composites, stability, subgroups, sweep."""
    analysis = _analysis_set(patients_path)
    n = len(analysis)
    level = settings["statistics"]["confidence_level"]
    handling = settings["responders"]["could_not_improve"]
    classified = classify_all(analysis, settings)
    classified.to_parquet(out["classified"], index=False)
    for (outcome, occasion), counts in classified.groupby(["outcome", "occasion"], sort=False)[
        "category"
    ]:
        log.info("%s at %s: %s", outcome, occasion, counts.value_counts().to_dict())
    composite = composites(classified)
    rates = responder_rates(classified, composite, handling, n, level)
    cni_note = (
        "could-not-improve patients (start leaves less room than the MCID) are left out of the denominators"
        if handling == "exclude"
        else "could-not-improve patients (start leaves less room than the MCID) count as non-responders"
    )
    write_csv(
        rates,
        out["rates"],
        table_notes(
            settings,
            f"N = {n} (analysis set). Denominators: '{rates['denominator'].iat[0]}' = measured at start and at the "
            f"occasion; '{rates['denominator'].iat[1]}' = every patient of the analysis set, a missing follow-up "
            f"counted as non-responder. {cni_note}. {level:.0%} CI: Wilson score. Composite: all outcomes measured.",
        ),
    )
    follow_ups = [o["name"] for o in settings["occasions"][1:]]
    stable = (
        stability(classified, follow_ups[0], follow_ups[-1])
        if len(follow_ups) > 1
        else pd.DataFrame()
    )
    write_csv(
        stable,
        out["stability"],
        table_notes(
            settings,
            "Patients classified (responder or non-responder) at both occasions; exact McNemar test.",
        ),
    )
    subgroups = subgroup_rates(analysis, classified, settings["subgroups"], handling, level)
    write_csv(
        subgroups,
        out["subgroups"],
        table_notes(
            settings, f"Available cases within each level; {level:.0%} Wilson CI; {cni_note}."
        ),
    )
    labels = {name: spec["label"] for name, spec in settings["outcomes"].items()}
    write_csv(
        versus_paper(rates, settings["responders"].get("paper", {}), labels),
        out["vs_paper"],
        table_notes(
            settings,
            "paper: Trulsson Schouenborg et al. 2021, abstract (share with clinically important "
            "improvement at discharge; rule and denominator not stated in the abstract). this_run: available cases.",
        ),
    )


def threshold_sweep_stage(
    patients_path: str, outcome: str, settings: dict[str, Any], out: str
) -> None:
    """Rule `threshold_sweep` (one job per outcome): responder shares over a range of thresholds."""
    analysis = _analysis_set(patients_path)
    level = settings["statistics"]["confidence_level"]
    sweep = threshold_sweep(
        analysis,
        outcome,
        settings["outcomes"][outcome],
        [o["name"] for o in settings["occasions"]],
        settings["sweep_points"],
        level,
    )
    log.info("%s: %d thresholds x scales x occasions", outcome, len(sweep))
    write_csv(
        sweep,
        out,
        table_notes(
            settings,
            f"Available cases; share whose improvement reaches each threshold (absolute: 0 to half the "
            f"range; percent of the start value: 0-100%); {level:.0%} Wilson CI.",
        ),
    )


def lmm_stage(patients_path: str, settings: dict[str, Any], out: dict[str, str]) -> None:
    """Rule `lmm`: linear mixed model per outcome (no MCID needed: a threshold edit skips it)."""
    from cohort import figures  # matplotlib (0.5 s): imported only by rules that draw

    analysis = _analysis_set(patients_path)
    n = len(analysis)
    level = settings["statistics"]["confidence_level"]
    covariates = settings["covariates"]
    occasion_labels = {o["name"]: o["label"] for o in settings["occasions"]}
    ranges = {name: spec["range"] for name, spec in settings["outcomes"].items()}
    effects, means, _ = lmm_tables(analysis, settings, covariates, level)
    lmm = pd.concat(
        [
            effects.assign(section="fixed effect or variance"),
            means.assign(section="estimated mean"),
        ],
        ignore_index=True,
    )
    write_csv(
        lmm,
        out["lmm"],
        table_notes(
            settings,
            f"N = {n} (analysis set); patients/observations: those with the outcome measured and complete "
            f"covariates ({', '.join(covariates)}). Linear mixed model, REML (exact, on per-patient sums), "
            f"random intercept per patient; Wald {level:.0%} CI. Estimated means at the mean of the covariate design.",
        ),
    )
    figures.save_figure(
        figures.estimated_means(
            means,
            occasion_labels,
            ranges,
            " ".join(
                table_notes(
                    settings,
                    f"Linear mixed model estimated means with {level:.0%} CI; n = patients measured.",
                )
            ),
        ),
        out["figure"],
    )


def _baseline_variables(settings: dict[str, Any]) -> list[str]:
    models = settings["models"]
    return [
        *settings["covariates"],
        *(f"{o}_{settings['occasions'][0]['name']}" for o in settings["outcomes"]),
        *([models["dose"]] if models["dose"] else []),
    ]


def missing_data_stage(patients_path: str, settings: dict[str, Any], out: str) -> None:
    """Rule `missing_data`: the pattern of missing values, and patients assessed vs lost."""
    analysis = _analysis_set(patients_path)
    n = len(analysis)
    last = settings["occasions"][-1]["name"]
    baseline_vars = _baseline_variables(settings)
    missing = missingness_table(
        analysis,
        settings,
        list(dict.fromkeys([*imputation_variables(settings), *baseline_vars])),
    )
    compared = completers_vs_lost(analysis, last, baseline_vars)
    write_csv(
        pd.concat(
            [
                missing.assign(section="missing"),
                compared.assign(section=f"assessed vs lost at {last}"),
            ],
            ignore_index=True,
        ),
        out,
        table_notes(
            settings,
            f"N = {n}. missing: n and % of N per variable and occasion. assessed vs lost: baseline of "
            "patients assessed at the last occasion vs those lost; smd = standardized mean difference; Welch t or chi-square.",
        ),
    )


def impute_stage(
    patients_path: str, part: int, parts: int, settings: dict[str, Any], out: str
) -> None:
    """Rule `impute` (one job per part): imputations part, part + parts, ... of the m."""
    imputed, m = impute_part(_analysis_set(patients_path), settings, part, parts)
    log.info("part %d of %d: %d imputed rows written (m = %d)", part + 1, parts, len(imputed), m)
    imputed.to_parquet(out, index=False)


def predictors_stage(
    patients_path: str,
    classified_path: str,
    imputation_paths: list[str],
    settings: dict[str, Any],
    out: dict[str, str],
) -> None:
    """Rule `predictors`: response models (complete case and pooled over the imputations) and
    responder rates under three handlings of missing follow-up."""
    from cohort import figures  # matplotlib (0.5 s): imported only by rules that draw

    analysis = _analysis_set(patients_path)
    classified = pd.read_parquet(classified_path)
    n = len(analysis)
    level = settings["statistics"]["confidence_level"]
    models = settings["models"]

    def terms_of(outcome: str) -> list[str]:
        return predictor_terms(
            outcome,
            settings["covariates"],
            models["dose"],
            models["categories"],
            settings["occasions"][0]["name"],
        )

    complete_case = predictor_table(analysis, classified, settings, terms_of, level)
    parts = pd.concat([pd.read_parquet(p) for p in imputation_paths], ignore_index=True)
    imputed = analyse_imputed(completed_data_sets(analysis, settings, parts), settings, terms_of)
    predictors = pd.concat(
        [complete_case, pooled_predictors(imputed, settings, level)], ignore_index=True
    )
    write_csv(
        predictors,
        out["predictors"],
        table_notes(
            settings,
            f"Logistic regression of response (MCID rule of the responders rule) on {', '.join(terms_of('<outcome>'))}. "
            f"complete case: N = patients classified at the occasion with complete variables; multiple imputation: "
            f"all N = {n}, m = {imputed.m}, Monte Carlo SE = sqrt(B / m). Odds ratios with {level:.0%} CI; "
            "epv = min(events, non-events) per coefficient, flagged below 10.",
        ),
    )
    figures.save_figure(
        figures.forest_plot(
            predictors, " ".join(table_notes(settings, "Odds ratios with CIs, log scale."))
        ),
        out["forest"],
    )
    write_csv(
        sensitivity_table(analysis, classified, imputed, settings, level),
        out["sensitivity"],
        table_notes(
            settings,
            f"Responder rates under three handlings of missing follow-up; N = {n}. complete case: measured at "
            "start and occasion; non-responder imputation: missing = non-responder; multiple imputation: outcomes "
            f"imputed (MICE, PMM; m = {imputed.m}) and classified in each imputed set, pooled by Rubin's rules on "
            "the logit scale; Monte Carlo SE on the logit scale.",
        ),
    )


def publish_stage(
    tables: dict[str, str | list[str]], settings: dict[str, Any], out: dict[str, str]
) -> None:
    """Rule `publish`: disclosure control of every table, then the renderings made from the
    protected tables (Table 2 in Markdown and beside the paper, count-bearing figures)."""
    from cohort import figures  # matplotlib (0.5 s): imported only by rules that draw

    min_cell = settings["disclosure"]["min_cell"]
    protected = {}
    for name, path in tables.items():
        paths = [path] if isinstance(path, str) else list(path)  # a table made in parts
        table = pd.concat([read_csv(p) for p in paths], ignore_index=True)
        notes = read_notes(paths[0])
        rule = TABLE_RULES.get(name)
        if rule is not None:
            table, hidden = suppress(table, rule, min_cell)
            notes.append(
                f"Disclosure control: counts below {min_cell} (and the values derived from them) shown as "
                f"<{min_cell} or blank, with secondary suppression; {hidden} cells suppressed."
            )
            log.info("%s: %d cells suppressed", name, hidden)
        else:
            log.info(
                "%s: published without suppression (no counts of patients by characteristic)", name
            )
        write_csv(table, out[name], notes)
        protected[name] = (table, notes)
    baseline, notes = protected["baseline"]
    (Path(out["baseline_markdown"])).write_text(
        baseline_markdown(baseline, "Baseline characteristics (Table 2)", notes), encoding="utf-8"
    )
    write_csv(
        baseline_vs_paper(baseline, settings["baseline"]),
        out["baseline_vs_paper"],
        table_notes(
            settings,
            "paper: Trulsson Schouenborg et al. 2021, Table 2 (N = 274); this run after disclosure control.",
        ),
    )
    sweep, notes = protected["threshold_sweep"]
    shares = ["pct", "ci_low_pct", "ci_high_pct", "n"]  # suppressed cells ("<5", blank) not drawn
    sweep = sweep.assign(**{c: pd.to_numeric(sweep[c], errors="coerce") for c in shares})
    figures.save_figure(
        figures.threshold_sweep_figure(
            sweep,
            {name: spec["label"] for name, spec in settings["outcomes"].items()},
            {o["name"]: o["label"] for o in settings["occasions"]},
            {name: spec["mcid"]["absolute"] for name, spec in settings["outcomes"].items()},
            " ".join([*notes, "Dashed: configured MCID."]),
        ),
        out["sweep_figure"],
    )
    if "interventions" not in protected:
        log.info("no session data: no intervention figures")
        return
    categories, _ = protected["interventions"]
    n = int(categories["N"].iat[0])
    caption = " ".join(
        table_notes(
            settings,
            f"N = {n} (analysis set). Categories coded from the medical records; "
            f"counts below {min_cell} suppressed.",
        )
    )
    figures.save_figure(figures.category_bars(categories, caption), out["interventions_figure"])
    figures.save_figure(
        figures.cooccurrence_heatmap(protected["intervention_cooccurrence"][0], n, caption),
        out["cooccurrence_figure"],
    )


def summary_stage(tables: dict[str, str], settings: dict[str, Any], out: str) -> None:
    """Rule `summary`: results/summary.md from the published tables."""
    read = {name: read_csv(path) for name, path in tables.items()}
    for name, table in read.items():
        log.info("read %s: %d rows", tables[name], len(table))
    Path(out).write_text(summary_markdown(read, settings), encoding="utf-8")
    log.info("wrote %s", out)


def provenance_stage(
    inputs: dict[str, list[str]], outputs: list[str], config: dict[str, Any], repo: str, out: str
) -> None:
    """Rule `provenance`: results/provenance.json."""
    record = provenance(inputs, outputs, config, repo)
    log.info(
        "hashed %d input files and %d outputs; git: %s",
        sum(len(v) for v in record["inputs"].values()),
        len(record["outputs"]),
        record["git"],
    )
    write_provenance(record, out)


def groups_stage(
    patients_path: str, classified_path: str, settings: dict[str, Any], out: dict[str, str]
) -> None:
    """Rule `groups`: outcomes and responder rates by group, ANCOVA per follow-up, and the
    group x occasion mixed model, for the comparison the study declares."""
    analysis = _analysis_set(patients_path)
    classified = pd.read_parquet(classified_path)
    comparison = settings["comparison"]
    group, reference = comparison["variable"], comparison["reference"]
    level = settings["statistics"]["confidence_level"]
    covariates = settings["covariates"]
    occasions = [o["name"] for o in settings["occasions"]]
    n = len(analysis)
    write_csv(
        levels_by_group(analysis, settings, group),
        out["levels"],
        table_notes(
            settings, f"N = {n}; n measured per group and occasion; mean (SD), median [Q1, Q3]."
        ),
    )
    ancovas = [
        ancova(analysis, o, occ, occasions[0], group, reference, covariates, level)
        for o in settings["outcomes"]
        for occ in occasions[1:]
    ]
    write_csv(
        pd.concat(ancovas, ignore_index=True),
        out["ancova"],
        table_notes(
            settings,
            f"Difference from {group} = {reference} at each follow-up, adjusted for the baseline value and "
            f"{', '.join(covariates)}; complete cases (N); OLS, t-based {level:.0%} CI.",
        ),
    )
    write_csv(
        responders_by_group(
            classified, analysis, group, settings["responders"]["could_not_improve"], level
        ),
        out["responders"],
        table_notes(settings, f"Available cases per group; Wilson {level:.0%} CI."),
    )
    rows = []
    for outcome in settings["outcomes"]:
        try:
            fit, messages = fit_quietly(
                lambda o=outcome: group_by_occasion_lmm(
                    analysis, o, occasions, group, reference, covariates
                )
            )
        except Exception as exc:  # reported, not hidden
            rows.append(
                {
                    "outcome": outcome,
                    "term": "(model failed)",
                    "warnings": f"{type(exc).__name__}: {exc}",
                }
            )
            continue
        ci = fit.conf_int(alpha=1 - level)
        for term in fit.fe_params.index:
            rows.append(
                {
                    "outcome": outcome,
                    "term": term,
                    "estimate": fit.fe_params[term],
                    "ci_low": ci.loc[term, 0],
                    "ci_high": ci.loc[term, 1],
                    "p_value": fit.pvalues[term],
                    "observations": int(fit.nobs),
                    "converged": bool(fit.converged),
                    "warnings": " | ".join(messages),
                    "method": "REML, random intercept per patient; Wald CI",
                }
            )
    write_csv(
        pd.DataFrame(rows),
        out["lmm"],
        table_notes(
            settings,
            f"value ~ occasion x {group} + {', '.join(covariates)}; the occasion:{group} terms are the "
            "between-group differences in change from baseline.",
        ),
    )
