# Stage 7: disclosure control of every table under one suppression pattern across all of them
# (cohort.disclosure.protect_tables), with what is rendered from the protected tables (Table 2 in
# Markdown and beside the paper, summary.md, the output-checking report), in one job; the figures,
# drawn from the published tables; then provenance.

PUBLISHED_TABLES = {
    "flow": rules.clean.output.flow,
    "baseline": rules.baseline.output.table,
    "outcomes": rules.outcomes.output.table,
    "site_aggregates": rules.outcomes.output.aggregates,
    "responders": rules.responders.output.rates,
    "responder_course": rules.responders.output.course,
    "responder_directions": rules.responders.output.directions,
    "responder_subgroups": rules.responders.output.subgroups,
    "threshold_sweep": expand(
        f"{TABLES}/threshold_sweep/{{outcome}}.csv", outcome=list(config["outcomes"])
    ),
    "responders_vs_paper": rules.responders.output.vs_paper,
    "lmm": rules.lmm.output.lmm,
    "predictors": rules.predictors.output.predictors,
    "missingness": rules.missing_data.output.missingness,
    "missing_data_sensitivity": rules.predictors.output.sensitivity,
    "tipping_point": rules.tipping_point.output.table,
    "clinical_significance_definitions": rules.clinical_significance.output.definitions,
    "clinical_significance_rates": rules.clinical_significance.output.rates,
    "clinical_significance_agreement": rules.clinical_significance.output.agreement,
}
if HAS_SESSIONS:
    PUBLISHED_TABLES.update(
        interventions=rules.interventions.output.categories,
        dose=rules.interventions.output.dose,
        intervention_combinations=rules.interventions.output.combinations,
        intervention_cooccurrence=rules.interventions.output.cooccurrence,
    )
if HAS_COMPARISON:
    PUBLISHED_TABLES.update(
        group_outcomes=rules.groups.output.levels,
        group_ancova=rules.groups.output.ancova,
        group_responders=rules.groups.output.responders,
        group_lmm=rules.groups.output.lmm,
    )
# A steward's decisions name outputs of this study only.
_decidable = decidable_outputs(
    PUBLISHED_TABLES,
    [
        f
        for f in FIGURES
        if HAS_SESSIONS or f not in ("interventions", "intervention_cooccurrence")
    ],
)
for _output in RELEASE.decisions:
    if _output not in _decidable:
        _stop(
            f"{RELEASE.source}: outputs.{_output}: not an output of this study; decidable "
            f"outputs: {', '.join(_decidable)}"
        )
# Figures drawn from patient-level data by the rule that computes them (no counts: a box of
# quartiles only for groups of at least min_cell patients); every other figure is drawn by rule
# figures from the tables as published.
FIGURES_OF_ANALYSIS_RULES = [
    rules.outcomes.output[name]
    for name in ("changes", "changes_pdf")
    if name in rules.outcomes.output.keys()
]


rule publish:
    input:
        **PUBLISHED_TABLES,
        code=code_of("publish"),
    output:
        **released(
            {
                **{name: f"{RESULTS}/tables/{name}.csv" for name in PUBLISHED_TABLES},
                "baseline_markdown": f"{RESULTS}/tables/baseline.md",
                "summary": f"{RESULTS}/summary.md",
                "baseline_vs_paper": f"{RESULTS}/tables/baseline_vs_paper.csv",
            }
        ),
        disclosure_report=f"{RESULTS}/disclosure_report.md",
        release_request=f"{RESULTS}/results.json",
    log:
        f"{LOGS}/publish.log",
    benchmark:
        f"{BENCHMARKS}/publish.tsv"
    params:
        settings=settings(
            "study",
            "baseline",
            "disclosure",
            "occasions",
            "outcomes",
            "derived",
            "responders",
            "models",
            "statistics",
        ),
        tables=list(PUBLISHED_TABLES),
        summary_tables=[
            "flow",
            "responders",
            "responders_vs_paper",
            "missing_data_sensitivity",
            "clinical_significance_rates",
            "clinical_significance_definitions",
            "lmm",
            "baseline_vs_paper",
        ],
        levels=LEVEL_LABELS,
        release=RELEASE.record(),
        cache=CACHE,
    script:
        "../scripts/publish.py"


def published(*names):
    """The named outputs of rule publish that the steward's decisions do not withhold."""
    return {
        n: rules.publish.output[n] for n in names if n in rules.publish.output.keys()
    }


def _figure(name, label, group):
    """A figure in the report's third category, grouped by the analysis it shows."""
    return report(
        f"{RESULTS}/figures/{name}.png",
        caption="../report/figure.rst",
        category="3 Figures",
        subcategory=group,
        labels={"figure": label},
    )


def _pdf(name):
    """The vector PDF saved beside each figure's PNG (cohort.publish.figures.save_figure)."""
    return f"{RESULTS}/figures/{name}.pdf"


rule figures:
    input:
        **published(
            "interventions",
            "intervention_cooccurrence",
            "flow",
            "baseline",
            "outcomes",
            "lmm",
            "predictors",
            "threshold_sweep",
            "responder_directions",
            "responder_course",
            "clinical_significance_rates",
            "clinical_significance_definitions",
            "tipping_point",
        ),
        code=code_of("figures"),
    output:
        **released(
            dict(
                **(
                    {
                        "interventions": _figure(
                            "interventions", "intervention categories", "Interventions"
                        ),
                        "interventions_pdf": _pdf("interventions"),
                        "cooccurrence": _figure(
                            "intervention_cooccurrence",
                            "category co-occurrence",
                            "Interventions",
                        ),
                        "cooccurrence_pdf": _pdf("intervention_cooccurrence"),
                    }
                    if HAS_SESSIONS
                    else {}
                ),
                flow=_figure("flow", "flow of patients", "Flow"),
                flow_pdf=_pdf("flow"),
                trajectories=_figure(
                    "outcome_trajectories", "outcome trajectories", "Outcomes"
                ),
                trajectories_pdf=_pdf("outcome_trajectories"),
                lmm=_figure("lmm_means", "mixed model means", "Models"),
                lmm_pdf=_pdf("lmm_means"),
                forest=_figure(
                    "predictors_forest", "predictors of response", "Models"
                ),
                forest_pdf=_pdf("predictors_forest"),
                sweep=_figure("threshold_sweep", "threshold sweep", "Responders"),
                sweep_pdf=_pdf("threshold_sweep"),
                directions=_figure(
                    "responder_directions",
                    "improved, unchanged, deteriorated",
                    "Responders",
                ),
                directions_pdf=_pdf("responder_directions"),
                course=_figure(
                    "responder_course",
                    "course of response over the follow-ups",
                    "Responders",
                ),
                course_pdf=_pdf("responder_course"),
                significance=_figure(
                    "clinical_significance",
                    "responder rates under each definition",
                    "Clinical significance",
                ),
                significance_pdf=_pdf("clinical_significance"),
                tipping=_figure(
                    "tipping_point",
                    "tipping point of delta-adjusted imputation",
                    "Missing data",
                ),
                tipping_pdf=_pdf("tipping_point"),
            )
        ),
        legends=f"{RESULTS}/figures/legends.md",
        legends_html=report(
            f"{RESULTS}/figures/legends.html",
            caption="../report/legends.rst",
            category="3 Figures",
            subcategory="Legends",
            labels={"figure": "legends of every figure"},
        ),
    log:
        f"{LOGS}/figures.log",
    benchmark:
        f"{BENCHMARKS}/figures.tsv"
    params:
        settings=settings("study", "occasions", "outcomes"),
        levels=LEVEL_LABELS,
        changes_published="changes" in rules.outcomes.output.keys(),
        cache=CACHE,
    script:
        "../scripts/figures.py"


# Every published table in print form (the report shows them inline, each with its caption from
# cohort.publish.publication.TABLE_CAPTIONS), all of them in one Word document, and the summary and the
# output-checking report as HTML pages: the report's first category.
PRINTED_TABLES = [
    name
    for name in [*PUBLISHED_TABLES, "baseline_vs_paper"]
    if name in rules.publish.output.keys()
]


rule publication_tables:
    input:
        **published(*PRINTED_TABLES, "summary"),
        disclosure_report=rules.publish.output.disclosure_report,
        code=code_of("publication_tables"),
    output:
        **released(
            {
                "summary": report(
                    f"{RESULTS}/summary.html",
                    caption="../report/summary.rst",
                    category="1 Summary",
                    labels={"document": "summary"},
                )
            }
        ),
        html=report(
            directory(f"{RESULTS}/tables/html"),
            patterns=["{table}.html"],
            caption="../report/table.rst",
            category="2 Tables",
            labels={"table": "{table}"},
        ),
        word=report(
            f"{RESULTS}/tables/manuscript_tables.docx",
            caption="../report/word.rst",
            category="1 Summary",
            labels={"document": "all tables for the manuscript (Word)"},
        ),
        disclosure_report=report(
            f"{RESULTS}/disclosure_report.html",
            caption="../report/disclosure.rst",
            category="1 Summary",
            labels={"document": "output-checking report"},
        ),
    log:
        f"{LOGS}/publication_tables.log",
    benchmark:
        f"{BENCHMARKS}/publication_tables.tsv"
    params:
        settings=settings("study", "occasions", "outcomes"),
        tables=PRINTED_TABLES,
        levels=LEVEL_LABELS,
        captions={name: table_caption(name) for name in PRINTED_TABLES},
        min_cell=config["disclosure"]["min_cell"],
        cache=CACHE,
    script:
        "../scripts/publication_tables.py"


# A site's bundle for a pooling of several clinics (cohort.analysis.pooling): its published aggregates
# and responder breakdown with what the pooling must share. Not written where the steward
# withholds the aggregates.
SITE_BUNDLE = []
if {"site_aggregates", "responders"} <= set(rules.publish.output.keys()):

    rule site_bundle:
        input:
            **published("lmm", "responder_subgroups"),
            aggregates=rules.publish.output.site_aggregates,
            responders=rules.publish.output.responders,
            contract=config["extract"]["contract"],
            code=code_of("site_bundle"),
        output:
            bundle=f"{RESULTS}/site_bundle.json",
        log:
            f"{LOGS}/site_bundle.log",
        benchmark:
            f"{BENCHMARKS}/site_bundle.tsv"
        params:
            settings=settings("study", "occasions", "outcomes", "responders"),
        script:
            "../scripts/site_bundle.py"

    SITE_BUNDLE = rules.site_bundle.output


from snakemake.io import strip_wildcard_constraints


def lineage():
    """Each rule's input and output files (wildcards expanded over the outcomes, imputation
    parts and patient shards), for provenance.json's lineage: output -> rule -> inputs.
    """
    values = {
        "outcome": list(config["outcomes"]),
        "part": list(range(IMPUTATION_JOBS)),
        "shard": list(range(SHARDS)),
    }
    out = {}
    for r in workflow.rules:
        if r.name in ("all", "provenance"):
            continue

        def files(items):
            paths = set()
            for item in items:
                if callable(item):
                    continue
                names = {w: values[w] for w in r.wildcard_names}
                pattern = strip_wildcard_constraints(str(item))
                paths.update(expand(pattern, **names) if names else [pattern])
            return sorted(paths)

        out[r.name] = {"inputs": files(r.input), "outputs": files(r.output)}
    return out


rule provenance:
    input:
        extract=[
            p
            for p in (extract_file(t) for t in ("patients", "sessions", "assessments"))
            if p
        ],
        config=sorted(
            os.path.relpath(p)
            for p in (Path(workflow.basedir) / "config").rglob("*.yaml")
        )
        + [os.path.relpath(Path(workflow.basedir) / "requirements.lock")],
        outputs=[
            *rules.publish.output,
            *rules.figures.output,
            *rules.publication_tables.output,
            *FIGURES_OF_ANALYSIS_RULES,
            *SITE_BUNDLE,
        ],
        code=CODE,
        workflow=WORKFLOW_FILES,
    output:
        f"{RESULTS}/provenance.json",
    log:
        f"{LOGS}/provenance.log",
    benchmark:
        f"{BENCHMARKS}/provenance.tsv"
    params:
        config=config,
        lineage=lineage(),
        release=RELEASE.record() if RELEASE.decisions else None,
    script:
        "../scripts/provenance.py"
