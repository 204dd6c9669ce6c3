# Stage 7: disclosure control and publication of the tables, with what is rendered from them
# (Table 2 in Markdown and beside the paper, summary.md), in one job; then provenance. Figures are
# drawn by the rules that compute them, those that show counts from their tables after the same
# disclosure control (cohort.outputs.read_protected, cohort.disclosure.protect).

PUBLISHED_TABLES = {
    "flow": rules.clean.output.flow,
    "baseline": rules.baseline.output.table,
    "outcomes": rules.outcomes.output.table,
    "responders": rules.responders.output.rates,
    "responder_stability": rules.responders.output.stability,
    "responder_subgroups": rules.responders.output.subgroups,
    "threshold_sweep": expand(
        f"{TABLES}/threshold_sweep/{{outcome}}.csv", outcome=list(config["outcomes"])
    ),
    "responders_vs_paper": rules.responders.output.vs_paper,
    "lmm": rules.lmm.output.lmm,
    "predictors": rules.predictors.output.predictors,
    "missingness": rules.missing_data.output.missingness,
    "missing_data_sensitivity": rules.predictors.output.sensitivity,
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
# Figures, each drawn by the rule that computes its numbers.
FIGURES_OF_ANALYSIS_RULES = [
    rules.clean.output.flow_figure,
    rules.outcomes.output.trajectories,
    rules.outcomes.output.changes,
    rules.lmm.output.figure,
    rules.predictors.output.forest,
    rules.responders.output.sweep_figure,
]
if HAS_SESSIONS:
    FIGURES_OF_ANALYSIS_RULES += [
        rules.interventions.output.categories_figure,
        rules.interventions.output.cooccurrence_figure,
    ]


rule publish:
    input:
        **PUBLISHED_TABLES,
        code=CODE,
    output:
        **{
            name: report(
                f"{RESULTS}/tables/{name}.csv",
                caption="../report/table.rst",
                category="Tables",
                labels={"table": name},
            )
            for name in PUBLISHED_TABLES
        },
        baseline_markdown=f"{RESULTS}/tables/baseline.md",
        summary=report(
            f"{RESULTS}/summary.md",
            caption="../report/figure.rst",
            category="Summary",
            labels={"document": "summary"},
        ),
        baseline_vs_paper=report(
            f"{RESULTS}/tables/baseline_vs_paper.csv",
            caption="../report/table.rst",
            category="Comparison with the paper",
            labels={"table": "Table 2: paper vs this run"},
        ),
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
        ),
        tables=list(PUBLISHED_TABLES),
        summary_tables=[
            "flow",
            "responders",
            "responders_vs_paper",
            "missing_data_sensitivity",
            "lmm",
            "baseline_vs_paper",
        ],
    log:
        f"{LOGS}/publish.log",
    benchmark:
        f"{BENCHMARKS}/publish.tsv"
    script:
        "../scripts/publish.py"


rule provenance:
    input:
        extract=[p for p in (extract_file(t) for t in ("patients", "sessions", "assessments")) if p],
        config=sorted(
            os.path.relpath(p) for p in (Path(workflow.basedir) / "config").rglob("*.yaml")
        )
        + [os.path.relpath(Path(workflow.basedir) / "requirements.lock")],
        outputs=[
            *rules.publish.output,
            *FIGURES_OF_ANALYSIS_RULES,
        ],
        code=CODE,
    output:
        f"{RESULTS}/provenance.json",
    params:
        config=config,
        repo=workflow.basedir,
    log:
        f"{LOGS}/provenance.log",
    benchmark:
        f"{BENCHMARKS}/provenance.tsv"
    script:
        "../scripts/provenance.py"
