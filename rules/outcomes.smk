# Stage 4: each outcome at each occasion, and its change from baseline.


rule outcomes:
    input:
        patients=rules.clean.output.patients,
        code=CODE,
    output:
        table=f"{RESULTS}/tables/outcomes.csv",
        trajectories=f"{RESULTS}/figures/outcome_trajectories.png",
        changes=f"{RESULTS}/figures/outcome_changes.png",
    params:
        settings=settings("study", "occasions", "statistics", outcomes=outcome_definitions()),
    log:
        f"{LOGS}/outcomes.log",
    benchmark:
        f"{BENCHMARKS}/outcomes.tsv"
    script:
        "../scripts/outcomes.py"
