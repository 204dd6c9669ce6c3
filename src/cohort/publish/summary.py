"""results/summary.md: one page for a human, made only from the published (disclosure-controlled)
tables and the config: the cohort, the flow, the paper's headline numbers beside this run's,
responder rates, key model results, and the assumptions in force."""

from __future__ import annotations

from typing import Any

import pandas as pd

from cohort.analysis.responders import population_note, rule_text
from cohort.analysis.tables import fmt
from cohort.core.settings import Analysis
from cohort.disclosure import DisclosureSettings
from cohort.io.outputs import SYNTHETIC_NOTE


def _num(value: Any, decimals: int = 0) -> str:
    number = pd.to_numeric(pd.Series([value]), errors="coerce").iat[0]
    return str(value) if pd.isna(number) else fmt(float(number), decimals)


def _count(value: Any) -> str:
    """A count as an integer (a column read back with blanks is float), a marker as printed."""
    number = pd.to_numeric(pd.Series([value]), errors="coerce").iat[0]
    return str(value) if pd.isna(number) else str(int(number))


def _rate(row: pd.Series) -> str:
    """'45% [39, 51] (108/240)'; a suppressed rate reads its marker, as the table prints it."""
    counts = f"({_count(row['responders'])}/{_count(row['n'])})"
    if pd.isna(pd.to_numeric(pd.Series([row["pct"]]), errors="coerce").iat[0]):
        return f"{row['pct']} {counts}"
    return f"{_num(row['pct'])}% [{_num(row['ci_low_pct'])}, {_num(row['ci_high_pct'])}] {counts}"


def assumptions(config: Analysis) -> list[str]:
    """The defaults in force that the paper does not report (marked ASSUMPTION in the config)."""
    items = []
    for outcome in config.outcomes.values():
        mcid = outcome.rule
        if mcid.assumption:
            items.append(f"MCID for {outcome.label}: {rule_text(mcid)} ({mcid.reference.strip()})")
        if outcome.items:
            items.append(
                f"{outcome.label}: {'prorated sum' if outcome.score == 'sum' else 'mean'} of answered items, "
                f"at least {outcome.min_answered} of {len(outcome.items)}"
            )
    derived = config.derived or {}
    if derived.get("anxious_depressed", {}).get("assumption"):
        spec = derived["anxious_depressed"]
        items.append(
            f"Anxious or depressed: EQ-5D anxiety/depression level ≥ {spec['min_level']} at start"
            f" (column `{spec['column']}`)"
        )
    items.append("Population rule: " + population_note(config.could_not_improve))
    items.append(
        "Responder denominators: patients measured at start and at the occasion (complete case)"
    )
    terms = config.terms
    if terms.categories or terms.dose:
        items.append(
            f"Predictors of response: categories {', '.join(terms.categories)} and dose `{terms.dose}`"
        )
    return items


def definition_sensitivity(
    rates: pd.DataFrame, definitions: pd.DataFrame, config: Analysis
) -> list[str]:
    """How much the headline depends on the definition of clinical significance: per outcome and
    follow-up, the primary (MCID) rate and the lowest and highest published available-case rate
    under the other definitions, with how many were published, withheld or not defined."""
    labels = dict(zip(definitions["definition"], definitions["label"], strict=False))
    others = rates[rates["definition"] != "mcid"]
    if others.empty:
        return []
    lines = [
        "",
        "## Sensitivity to the definition of clinical significance (available cases)",
        "",
        "Every definition with its rate, both denominators and multiple imputation: "
        "`clinical_significance_rates.csv`; agreement between them: `clinical_significance_agreement.csv`. "
        "Lowest and highest leave out rates of 0% and 100% (no or every patient: degenerate).",
        "",
        "| outcome | occasion | MCID (primary) | lowest | highest | definitions shown / withheld / not defined |",
        "|---|---|---|---|---|---|",
    ]
    available = rates[rates["analysis"] == "available cases"]
    for (outcome, occasion), group in rates.groupby(["outcome", "occasion"], sort=False):
        shown = available[
            (available["outcome"] == outcome) & (available["occasion"] == occasion)
        ].assign(value=lambda t: pd.to_numeric(t["pct"], errors="coerce"))
        primary = shown[shown["definition"] == "mcid"]
        # a rate of 0% or 100% (no or every patient) is degenerate: named in the table, not
        # taken as the lowest or highest
        rest = shown[
            (shown["definition"] != "mcid") & shown["value"].between(0, 100, inclusive="neither")
        ]
        methods = (
            group[group["definition"] != "mcid"].drop_duplicates("definition")["method"].astype(str)
        )
        withheld = int(methods.str.startswith("not published").sum())
        undefined = int(methods.str.startswith("not defined").sum())

        def cell(row: pd.Series) -> str:
            return f"{_num(row['pct'])}% [{_num(row['ci_low_pct'])}, {_num(row['ci_high_pct'])}] ({labels.get(row['definition'], row['definition'])})"

        low = cell(rest.loc[rest["value"].idxmin()]) if not rest.empty else ""
        high = cell(rest.loc[rest["value"].idxmax()]) if not rest.empty else ""
        head = _rate(primary.iloc[0]) if not primary.empty else ""
        lines.append(
            f"| {config.outcome_labels.get(outcome, outcome)} | {config.occasion_labels.get(occasion, occasion)} "
            f"| {head} | {low} | {high} | {len(rest)} / {withheld} / {undefined} |"
        )
    return lines


def _headline_lines(vs: pd.DataFrame, config: Analysis) -> list[str]:
    """The paper's responder rates beside this run's."""
    lines = [
        "## Headline: clinically important improvement, paper vs this run",
        "",
        *(
            ["No published responder rates to compare with (config responders.paper).", ""]
            if vs.empty
            else [
                "| outcome | occasion | paper | this run, % [95% CI] (responders/n) | rule |",
                "|---|---|---|---|---|",
            ]
        ),
    ]
    for _, r in vs.iterrows():
        this = _rate(r.rename({"this_run_pct": "pct"}))
        lines.append(
            f"| {r['label']} | {config.occasion_labels.get(r['occasion'], r['occasion'])} | {_num(r['paper_pct'])}% "
            f"| {this} | {r['rule']} |"
        )
    return lines


def _rate_lines(rates: pd.DataFrame, config: Analysis) -> list[str]:
    """Every responder rate with its denominator."""
    outcome_label, occasion_label = config.outcome_labels.get, config.occasion_labels.get
    lines = [
        "",
        "## Responder rates",
        "",
        "| outcome | occasion | denominator | rate |",
        "|---|---|---|---|",
    ]
    for _, r in rates.iterrows():
        lines.append(
            f"| {outcome_label(r['outcome'], r['outcome'])} | {occasion_label(r['occasion'], r['occasion'])} "
            f"| {r['denominator']} | {_rate(r)} |"
        )
    return lines


def _missing_data_lines(sens: pd.DataFrame, config: Analysis) -> list[str]:
    """The responder rate under complete case, multiple and non-responder imputation."""
    outcome_label, occasion_label = config.outcome_labels.get, config.occasion_labels.get
    lines = [
        "",
        "## Sensitivity to loss to follow-up (responder rate, %)",
        "",
        "| outcome | occasion | complete case | multiple imputation | non-responder imputation |",
        "|---|---|---|---|---|",
    ]
    for (outcome, occasion), g in sens.groupby(["outcome", "occasion"], sort=False):
        cell = {
            r["analysis"]: f"{_num(r['pct'])} [{_num(r['ci_low_pct'])}, {_num(r['ci_high_pct'])}]"
            for _, r in g.iterrows()
        }
        lines.append(
            f"| {outcome_label(outcome, outcome)} | {occasion_label(occasion, occasion)} | {cell.get('complete case', '')} "
            f"| {cell.get('multiple imputation', '')} | {cell.get('non-responder imputation', '')} |"
        )
    return lines


def _mixed_model_lines(lmm: pd.DataFrame, config: Analysis) -> list[str]:
    """The mixed models' estimated means per occasion."""
    means = lmm[lmm["section"] == "estimated mean"]
    lines = [
        "",
        "## Mixed models: estimated means per occasion [95% CI]",
        "",
        "| outcome | "
        + " | ".join(config.occasion_labels.get(o, o) for o in dict.fromkeys(means["occasion"]))
        + " |",
        "|---|" + "---|" * means["occasion"].nunique(),
    ]
    for outcome, g in means.groupby("outcome", sort=False):
        decimals = config.outcomes[outcome].decimals + 1
        cells = [
            f"{_num(r['estimated_mean'], decimals)} [{_num(r['ci_low'], decimals)}, {_num(r['ci_high'], decimals)}]"
            for _, r in g.iterrows()
        ]
        lines.append(f"| {g['label'].iat[0]} | " + " | ".join(cells) + " |")
    return lines


def _baseline_lines(baseline: pd.DataFrame) -> list[str]:
    """Table 2 beside the paper's figures."""
    lines = [
        "",
        "## Table 2: paper vs this run",
        "",
        *(
            ["No published Table 2 figures to compare with (config baseline rows' paper)."]
            if baseline.empty
            else ["| characteristic | paper | this run |", "|---|---|---|"]
        ),
    ]
    for _, r in baseline.iterrows():
        label = r["label"] + (f": {r['level']}" if str(r["level"]) not in ("", "nan") else "")
        lines.append(f"| {label} | {r['paper']} | {r['this_run']} |")
    return lines


def summary_markdown(
    tables: dict[str, pd.DataFrame], config: Analysis, disclosure: DisclosureSettings
) -> str:
    """results/summary.md from the published tables (`tables`, read back as a reader would)."""
    lines = []
    if config.synthetic:
        lines += [f"> **{SYNTHETIC_NOTE}**", ""]
    lines += ["# Summary of this run", "", config.study.title.strip(), ""]
    flow = tables["flow"]
    stages = flow[flow["kind"] == "stage"]
    lines += (
        ["## Patients", ""] + [f"- {r['label']}: {r['n']}" for _, r in stages.iterrows()] + [""]
    )
    lines += _headline_lines(tables["responders_vs_paper"], config)
    lines += _rate_lines(tables["responders"], config)
    if "clinical_significance_rates" in tables:
        lines += definition_sensitivity(
            tables["clinical_significance_rates"],
            tables["clinical_significance_definitions"],
            config,
        )
    lines += _missing_data_lines(tables["missing_data_sensitivity"], config)
    lines += _mixed_model_lines(tables["lmm"], config)
    lines += _baseline_lines(tables["baseline_vs_paper"])
    lines += ["", "## Assumptions in force", ""] + [f"- {a}" for a in assumptions(config)]
    lines += ["", "## Disclosure control", "", disclosure.footer()]
    lines += [
        "",
        "Every number here comes from the tables in `results/tables/` (after disclosure control); "
        "`results/provenance.json` records the inputs, software and code of this run.",
        "",
    ]
    return "\n".join(lines)
