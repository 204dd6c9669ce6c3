# Stage 3: what the programme consisted of (intervention categories, dose, combinations).


rule interventions:
    input:
        patients=rules.clean.output.patients,
        sessions=rules.clean.output.sessions,
        codebook=config["interventions"]["codebook"],
        code=code_of("interventions"),
    output:
        categories=f"{TABLES}/interventions.csv",
        dose=f"{TABLES}/dose.csv",
        combinations=f"{TABLES}/intervention_combinations.csv",
        cooccurrence=f"{TABLES}/intervention_cooccurrence.csv",
    log:
        f"{LOGS}/interventions.log",
    benchmark:
        f"{BENCHMARKS}/interventions.tsv"
    resources:
        mem_mb=memory_mb("interventions"),
    params:
        settings=settings("study", "interventions", "statistics"),
    script:
        "../scripts/interventions.py"
