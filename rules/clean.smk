# Stage 1: raw extract -> typed, cleaned, derived tables; cleaning log; flow of patients.
#
# With `cleaning.shards` > 1 (a registry on a cluster) the extract is split by patient
# (rule split_extract), each shard cleaned and derived in a job of its own (rule clean_shard), and
# rule clean gathers them into the same files one job writes (cohort.io.sharding): every rule
# after it, and so every published table, is the same for any number of shards.

SHARDS = config["cleaning"].get("shards", 1)
CLEAN_OUTPUTS = {
    "patients": f"{PROCESSED}/patients.parquet",
    "sessions": f"{PROCESSED}/sessions.parquet",
    "assessments": f"{PROCESSED}/assessments.parquet",
    "cleaning_log": f"{PROCESSED}/cleaning_log.csv",
    "flow": f"{TABLES}/flow.csv",
}
CLEAN_SETTINGS = settings(
    "study",
    "occasions",
    "derived",
    "interventions",
    "cleaning",
    outcomes=outcome_definitions(),
)
CODEBOOK = config["interventions"]["codebook"] if "interventions" in config else []


if SHARDS == 1:

    rule clean:
        input:
            patients=extract_file("patients"),
            sessions=extract_file("sessions"),
            assessments=extract_file("assessments"),
            contract=config["extract"]["contract"],
            codebook=CODEBOOK,
            code=code_of("clean"),
        output:
            **CLEAN_OUTPUTS,
        log:
            f"{LOGS}/clean.log",
        benchmark:
            f"{BENCHMARKS}/clean.tsv"
        resources:
            mem_mb=memory_mb("clean"),
        params:
            settings=CLEAN_SETTINGS,
        script:
            "../scripts/clean.py"

else:
    SHARD_DIR = f"{PROCESSED}/shards"
    SHARD_OUTPUTS = [
        "patients",
        "sessions",
        "assessments",
        "cleaning_log",
        "date_formats",
    ]

    rule split_extract:
        input:
            patients=extract_file("patients"),
            sessions=extract_file("sessions"),
            assessments=extract_file("assessments"),
            contract=config["extract"]["contract"],
            codebook=CODEBOOK,
            code=code_of("split_extract"),
        output:
            **{
                table: expand(
                    f"{SHARD_DIR}/{{shard}}/raw_{table}.parquet", shard=range(SHARDS)
                )
                for table in EXTRACT_FILES
            },
        log:
            f"{LOGS}/split_extract.log",
        benchmark:
            f"{BENCHMARKS}/split_extract.tsv"
        resources:
            mem_mb=memory_mb("split_extract"),
        params:
            shards=SHARDS,
            settings=CLEAN_SETTINGS,
        script:
            "../scripts/split_extract.py"

    rule clean_shard:
        input:
            **{
                table: f"{SHARD_DIR}/{{shard}}/raw_{table}.parquet"
                for table in EXTRACT_FILES
            },
            contract=config["extract"]["contract"],
            codebook=CODEBOOK,
            code=code_of("clean_shard"),
        output:
            patients=f"{SHARD_DIR}/{{shard}}/patients.parquet",
            sessions=f"{SHARD_DIR}/{{shard}}/sessions.parquet",
            assessments=f"{SHARD_DIR}/{{shard}}/assessments.parquet",
            cleaning_log=f"{SHARD_DIR}/{{shard}}/cleaning_log.parquet",
            date_formats=f"{SHARD_DIR}/{{shard}}/date_formats.parquet",
        log:
            f"{LOGS}/clean_shard{{shard}}.log",
        benchmark:
            f"{BENCHMARKS}/clean_shard{{shard}}.tsv"
        wildcard_constraints:
            shard=r"\d+",
        resources:
            mem_mb=memory_mb("clean_shard", 1 / SHARDS),
        params:
            tables=list(EXTRACT_FILES),
            settings=CLEAN_SETTINGS,
        script:
            "../scripts/clean_shard.py"

    rule clean:
        input:
            **{
                name: expand(
                    f"{SHARD_DIR}/{{shard}}/{name}.parquet", shard=range(SHARDS)
                )
                for name in SHARD_OUTPUTS
            },
            contract=config["extract"]["contract"],
            code=code_of("gather_shards"),
        output:
            **CLEAN_OUTPUTS,
        log:
            f"{LOGS}/clean.log",
        benchmark:
            f"{BENCHMARKS}/clean.tsv"
        resources:
            mem_mb=memory_mb("gather_shards"),
        params:
            parts=SHARD_OUTPUTS,
            settings=CLEAN_SETTINGS,
        script:
            "../scripts/gather_shards.py"
