# Stage 5: clinically important improvement (MCID responders).


rule responders:
    input:
        patients=rules.clean.output.patients,
        code=code_of("responders"),
    output:
        classified=f"{PROCESSED}/responders.parquet",
        rates=f"{TABLES}/responders.csv",
        course=f"{TABLES}/responder_course.csv",
        directions=f"{TABLES}/responder_directions.csv",
        subgroups=f"{TABLES}/responder_subgroups.csv",
        vs_paper=f"{TABLES}/responders_vs_paper.csv",
    log:
        f"{LOGS}/responders.log",
    benchmark:
        f"{BENCHMARKS}/responders.tsv"
    resources:
        mem_mb=memory_mb("responders"),
    params:
        settings=settings(
            "study",
            "occasions",
            "outcomes",
            "responders",
            "statistics",
            subgroups=subgroup_variables(config),
        ),
    script:
        "../scripts/responders.py"


# The share of patients reaching each of a range of thresholds needs no MCID: one job per outcome
# (a cluster executor can spread them), not rerun when a threshold is edited.
rule threshold_sweep:
    input:
        patients=rules.clean.output.patients,
        code=code_of("threshold_sweep"),
    output:
        f"{TABLES}/threshold_sweep/{{outcome}}.csv",
    log:
        f"{LOGS}/threshold_sweep_{{outcome}}.log",
    benchmark:
        f"{BENCHMARKS}/threshold_sweep_{{outcome}}.tsv"
    wildcard_constraints:
        outcome="|".join(config["outcomes"]),
    resources:
        mem_mb=memory_mb("threshold_sweep"),
    params:
        settings=settings(
            "study",
            "occasions",
            "statistics",
            outcomes=outcome_definitions(),
            sweep_points=config["responders"]["sweep_points"],
        ),
    script:
        "../scripts/threshold_sweep.py"
