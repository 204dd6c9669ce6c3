# Stage 4: each outcome at each occasion, and its change from baseline.


rule outcomes:
    input:
        patients=rules.clean.output.patients,
        code=code_of("outcomes"),
    output:
        **released(
            {
                "changes": report(
                    f"{RESULTS}/figures/outcome_changes.png",
                    caption="../report/figure.rst",
                    category="3 Figures",
                    subcategory="Outcomes",
                    labels={"figure": "individual change"},
                ),
                "changes_pdf": f"{RESULTS}/figures/outcome_changes.pdf",
            }
        ),
        table=f"{TABLES}/outcomes.csv",
        aggregates=f"{TABLES}/site_aggregates.csv",
    log:
        f"{LOGS}/outcomes.log",
    benchmark:
        f"{BENCHMARKS}/outcomes.tsv"
    resources:
        mem_mb=memory_mb("outcomes"),
    params:
        settings=settings(
            "study",
            "occasions",
            "statistics",
            "disclosure",
            outcomes=outcome_definitions(),
        ),
    script:
        "../scripts/outcomes.py"
