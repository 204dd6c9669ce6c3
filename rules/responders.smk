# Stage 5: clinically important improvement (MCID responders).


rule responders:
    input:
        patients=rules.clean.output.patients,
        code=CODE,
    output:
        classified=f"{PROCESSED}/responders.parquet",
        rates=f"{TABLES}/responders.csv",
        stability=f"{TABLES}/responder_stability.csv",
        subgroups=f"{TABLES}/responder_subgroups.csv",
        sweep=f"{TABLES}/threshold_sweep.csv",
        sweep_figure=report(
            f"{RESULTS}/figures/threshold_sweep.png",
            caption="../report/figure.rst",
            category="Figures",
            labels={"figure": "threshold sweep"},
        ),
        vs_paper=f"{TABLES}/responders_vs_paper.csv",
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
