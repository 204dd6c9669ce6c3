# Stage 3: what the programme consisted of (intervention categories, dose, combinations).


rule interventions:
    input:
        patients=rules.clean.output.patients,
        sessions=rules.clean.output.sessions,
        codebook=config["interventions"]["codebook"],
        code=CODE,
    output:
        categories=f"{RESULTS}/tables/interventions.csv",
        dose=f"{RESULTS}/tables/dose.csv",
        combinations=f"{RESULTS}/tables/intervention_combinations.csv",
        cooccurrence=f"{RESULTS}/tables/intervention_cooccurrence.csv",
        bars=f"{RESULTS}/figures/interventions.png",
        heatmap=f"{RESULTS}/figures/intervention_cooccurrence.png",
    params:
        settings=settings("study", "interventions"),
    log:
        f"{LOGS}/interventions.log",
    benchmark:
        f"{BENCHMARKS}/interventions.tsv"
    script:
        "../scripts/interventions.py"
