# Stage 6: mixed models, predictors of response, missing data and its sensitivity.


rule models:
    input:
        patients=rules.clean.output.patients,
        classified=rules.responders.output.classified,
        code=CODE,
    output:
        lmm=f"{RESULTS}/tables/lmm.csv",
        lmm_figure=f"{RESULTS}/figures/lmm_means.png",
        predictors=f"{RESULTS}/tables/predictors.csv",
        forest=f"{RESULTS}/figures/predictors_forest.png",
        missingness=f"{RESULTS}/tables/missingness.csv",
        sensitivity=f"{RESULTS}/tables/missing_data_sensitivity.csv",
    params:
        settings=settings(
            "study", "occasions", "outcomes", "covariates", "models", "responders", "statistics"
        ),
    log:
        f"{LOGS}/models.log",
    benchmark:
        f"{BENCHMARKS}/models.tsv"
    script:
        "../scripts/models.py"
