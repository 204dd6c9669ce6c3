# Stage 6: mixed models, missing data, multiple imputation, predictors of response.
#
# Only `predictors` uses the MCID classification, so a threshold edit reruns it and nothing else
# here. It applies the MCID rule itself (cohort.analysis.responders.classify_all, as rule responders does)
# rather than reading responders' output, so that both run side by side after a threshold edit. The imputations are independent chains split over `models.imputation.jobs` jobs (one
# Snakemake job each, so a cluster executor can spread them); the result does not depend on the
# number of jobs, since chain i is seeded by (seed, i).

IMPUTATION_JOBS = config["models"]["imputation"]["jobs"]


rule lmm:
    input:
        patients=rules.clean.output.patients,
        code=code_of("lmm"),
    output:
        lmm=f"{TABLES}/lmm.csv",
    log:
        f"{LOGS}/lmm.log",
    benchmark:
        f"{BENCHMARKS}/lmm.tsv"
    resources:
        mem_mb=memory_mb("lmm"),
    params:
        settings=settings(
            "study",
            "occasions",
            "covariates",
            "statistics",
            "cluster",
            outcomes=outcome_definitions(),
            models=model_settings("lmm"),
        ),
    script:
        "../scripts/lmm.py"


rule missing_data:
    input:
        patients=rules.clean.output.patients,
        code=code_of("missing_data"),
    output:
        missingness=f"{TABLES}/missingness.csv",
    log:
        f"{LOGS}/missing_data.log",
    benchmark:
        f"{BENCHMARKS}/missing_data.tsv"
    resources:
        mem_mb=memory_mb("missing_data"),
    params:
        settings=settings(
            "study",
            "occasions",
            "covariates",
            outcomes=outcome_definitions(),
            models=model_settings("dose", "categories"),
        ),
    script:
        "../scripts/missing_data.py"


rule impute:
    input:
        patients=rules.clean.output.patients,
        code=code_of("impute"),
    output:
        part=f"{PROCESSED}/imputations/part{{part}}.parquet",
    log:
        f"{LOGS}/impute_part{{part}}.log",
    benchmark:
        f"{BENCHMARKS}/impute_part{{part}}.tsv"
    wildcard_constraints:
        part=r"\d+",
    # The imputations and the predictors that wait for them are the longest path at registry
    # size: started first when the cores are busy, the other rules fill the gaps.
    priority: 10
    resources:
        mem_mb=memory_mb("impute"),
    params:
        part=lambda wildcards: int(wildcards.part),
        parts=IMPUTATION_JOBS,
        settings=settings(
            "occasions",
            "covariates",
            outcomes=outcome_definitions(),
            models=model_settings("dose", "categories", "imputation"),
        ),
    script:
        "../scripts/impute.py"


rule predictors:
    input:
        patients=rules.clean.output.patients,
        imputations=expand(
            f"{PROCESSED}/imputations/part{{part}}.parquet",
            part=range(IMPUTATION_JOBS),
        ),
        code=code_of("predictors"),
    output:
        predictors=f"{TABLES}/predictors.csv",
        sensitivity=f"{TABLES}/missing_data_sensitivity.csv",
    log:
        f"{LOGS}/predictors.log",
    benchmark:
        f"{BENCHMARKS}/predictors.tsv"
    priority: 10
    resources:
        mem_mb=memory_mb("predictors"),
    params:
        settings=settings(
            "study",
            "occasions",
            "outcomes",
            "covariates",
            "responders",
            "statistics",
            "cluster",
            models=model_settings("dose", "categories", "imputation", "logistic"),
        ),
    script:
        "../scripts/predictors.py"


# How much worse the missing follow-ups would have to be for the conclusions to change: the
# imputations of rule impute, shifted by a grid of deltas (cohort.analysis.tipping). Only this rule reads
# models.tipping_point.
rule tipping_point:
    input:
        patients=rules.clean.output.patients,
        imputations=expand(
            f"{PROCESSED}/imputations/part{{part}}.parquet",
            part=range(IMPUTATION_JOBS),
        ),
        code=code_of("tipping_point"),
    output:
        table=f"{TABLES}/tipping_point.csv",
    log:
        f"{LOGS}/tipping_point.log",
    benchmark:
        f"{BENCHMARKS}/tipping_point.tsv"
    resources:
        mem_mb=memory_mb("tipping_point"),
    params:
        settings=settings(
            "study",
            "occasions",
            "outcomes",
            "covariates",
            "responders",
            "statistics",
            models=model_settings("dose", "categories", "imputation", "tipping_point"),
        ),
    script:
        "../scripts/tipping_point.py"
