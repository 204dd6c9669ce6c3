# Stage 6b: clinical significance beyond the primary MCID: every definition of config
# `clinical_significance`, the rates under each (with the imputations of rule impute) and their
# agreement. Only this rule reads `clinical_significance`, so editing a definition, a reliability,
# a norm or the anchor's levels reruns it (and publishing), nothing else.


rule clinical_significance:
    input:
        patients=rules.clean.output.patients,
        imputations=expand(
            f"{PROCESSED}/imputations/part{{part}}.parquet",
            part=range(IMPUTATION_JOBS),
        ),
        code=code_of("clinical_significance"),
    output:
        definitions=f"{TABLES}/clinical_significance_definitions.csv",
        rates=f"{TABLES}/clinical_significance_rates.csv",
        agreement=f"{TABLES}/clinical_significance_agreement.csv",
    log:
        f"{LOGS}/clinical_significance.log",
    benchmark:
        f"{BENCHMARKS}/clinical_significance.tsv"
    resources:
        mem_mb=memory_mb("clinical_significance"),
    params:
        settings=settings(
            "study",
            "occasions",
            "outcomes",
            "responders",
            "statistics",
            "clinical_significance",
            "covariates",
            models=model_settings("dose", "categories", "imputation"),
        ),
    script:
        "../scripts/clinical_significance.py"
