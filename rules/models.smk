# Stage 6: mixed models, predictors of response, missing data and its sensitivity.


rule models:
    input:
        patients=rules.clean.output.patients,
        classified=rules.responders.output.classified,
        code=CODE,
    output:
        lmm=f"{TABLES}/lmm.csv",
        lmm_figure=report(
            f"{RESULTS}/figures/lmm_means.png",
            caption="../report/figure.rst",
            category="Figures",
            labels={"figure": "mixed model means"},
        ),
        predictors=f"{TABLES}/predictors.csv",
        forest=report(
            f"{RESULTS}/figures/predictors_forest.png",
            caption="../report/figure.rst",
            category="Figures",
            labels={"figure": "predictors of response"},
        ),
        missingness=f"{TABLES}/missingness.csv",
        sensitivity=f"{TABLES}/missing_data_sensitivity.csv",
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
