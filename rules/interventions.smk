# Stage 3: what the programme consisted of (intervention categories, dose, combinations).


rule interventions:
    input:
        patients=rules.clean.output.patients,
        sessions=rules.clean.output.sessions,
        codebook=config["interventions"]["codebook"],
        code=CODE,
    output:
        categories=f"{TABLES}/interventions.csv",
        dose=f"{TABLES}/dose.csv",
        combinations=f"{TABLES}/intervention_combinations.csv",
        cooccurrence=f"{TABLES}/intervention_cooccurrence.csv",
        # Drawn here from the tables after disclosure control (the same function as publish's).
        categories_figure=report(
            f"{RESULTS}/figures/interventions.png",
            caption="../report/figure.rst",
            category="Figures",
            labels={"figure": "intervention categories"},
        ),
        cooccurrence_figure=report(
            f"{RESULTS}/figures/intervention_cooccurrence.png",
            caption="../report/figure.rst",
            category="Figures",
            labels={"figure": "category co-occurrence"},
        ),
    params:
        settings=settings("study", "interventions", "disclosure"),
    log:
        f"{LOGS}/interventions.log",
    benchmark:
        f"{BENCHMARKS}/interventions.tsv"
    script:
        "../scripts/interventions.py"
