# Stage 2: Table 2 of the paper (baseline characteristics of the analysis set).


rule baseline:
    input:
        patients=rules.clean.output.patients,
        code=code_of("baseline"),
    output:
        table=f"{TABLES}/baseline.csv",
    log:
        f"{LOGS}/baseline.log",
    benchmark:
        f"{BENCHMARKS}/baseline.tsv"
    resources:
        mem_mb=memory_mb("baseline"),
    params:
        settings=settings("study", "baseline", "statistics"),
    script:
        "../scripts/baseline.py"
