# Stage 6b (studies with a comparison, e.g. a trial arm): between-group analyses.


rule groups:
    input:
        patients=rules.clean.output.patients,
        classified=rules.responders.output.classified,
        code=code_of("groups"),
    output:
        levels=f"{TABLES}/group_outcomes.csv",
        ancova=f"{TABLES}/group_ancova.csv",
        responders=f"{TABLES}/group_responders.csv",
        lmm=f"{TABLES}/group_lmm.csv",
    log:
        f"{LOGS}/groups.log",
    benchmark:
        f"{BENCHMARKS}/groups.tsv"
    resources:
        mem_mb=memory_mb("groups"),
    params:
        settings=settings(
            "study",
            "occasions",
            "outcomes",
            "covariates",
            "comparison",
            "responders",
            "statistics",
            "cluster",
            models=model_settings("lmm"),
        ),
    script:
        "../scripts/groups.py"
