# Stage 5: clinically important improvement (MCID responders).


rule responders:
    input:
        patients=rules.clean.output.patients,
        code=CODE,
    output:
        classified=f"{PROCESSED}/responders.parquet",
        rates=f"{RESULTS}/tables/responders.csv",
        stability=f"{RESULTS}/tables/responder_stability.csv",
        subgroups=f"{RESULTS}/tables/responder_subgroups.csv",
        sweep=f"{RESULTS}/tables/threshold_sweep.csv",
        sweep_figure=f"{RESULTS}/figures/threshold_sweep.png",
        vs_paper=f"{RESULTS}/tables/responders_vs_paper.csv",
    params:
        settings=settings(
            "study", "occasions", "outcomes", "responders", "subgroups", "statistics"
        ),
    log:
        f"{LOGS}/responders.log",
    benchmark:
        f"{BENCHMARKS}/responders.tsv"
    script:
        "../scripts/responders.py"
