# Stage 1: raw extract -> typed, cleaned, derived tables; cleaning log; flow of patients.


rule clean:
    input:
        patients=extract_file("patients"),
        sessions=extract_file("sessions"),
        assessments=extract_file("assessments"),
        contract=config["extract"]["contract"],
        codebook=(
            config["interventions"]["codebook"] if "interventions" in config else []
        ),
        code=code_of("clean"),
    output:
        patients=f"{PROCESSED}/patients.parquet",
        sessions=f"{PROCESSED}/sessions.parquet",
        assessments=f"{PROCESSED}/assessments.parquet",
        cleaning_log=f"{PROCESSED}/cleaning_log.csv",
        flow=f"{TABLES}/flow.csv",
    log:
        f"{LOGS}/clean.log",
    benchmark:
        f"{BENCHMARKS}/clean.tsv"
    params:
        settings=settings(
            "study",
            "occasions",
            "derived",
            "interventions",
            "cleaning",
            outcomes=outcome_definitions(),
        ),
    script:
        "../scripts/clean.py"
