# Stage 2: Table 2 of the paper (baseline characteristics of the analysis set).


rule baseline:
    input:
        patients=rules.clean.output.patients,
        code=code_of("baseline"),
    output:
        table=f"{TABLES}/baseline.csv",
    params:
        settings=settings("study", "baseline", "statistics"),
    log:
        f"{LOGS}/baseline.log",
    benchmark:
        f"{BENCHMARKS}/baseline.tsv"
    script:
        "../scripts/baseline.py"
