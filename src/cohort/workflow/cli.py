"""Command-line entry points for the steps that live outside the Snakemake pipeline."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from cohort.core.config import load_study, output_path_problems
from cohort.core.errors import CohortError
from cohort.io.contract import Contract, data_dictionary_markdown, load_codebook, load_contract
from cohort.io.synthetic import split_by_site, synthesize, write_extract
from cohort.io.synthetic_faults import FAULT_CLASSES


def _parser() -> argparse.ArgumentParser:
    """The commands and their arguments."""
    parser = argparse.ArgumentParser(prog="python -m cohort", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    _add_synthesize(sub)
    dic = sub.add_parser("dictionary", help="write the data dictionary generated from the contract")
    dic.add_argument("--config", type=Path, default=Path("config/config.yaml"))
    dic.add_argument("--contract", type=Path, default=None)
    dic.add_argument("--out", type=Path, required=True)
    bench = sub.add_parser("bench", help="time the pipeline on synthetic cohorts of several sizes")
    bench.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000, 1000000])
    bench.add_argument("--cores", type=int, default=2)
    bench.add_argument(
        "--default-study-runs", type=int, default=3, help="runs of the default study (0: none)"
    )
    bench.add_argument("--out", type=Path, default=Path("benchmarks/summary.csv"))
    bench.add_argument("--config", type=Path, default=Path("config/config.yaml"))
    bench.add_argument(
        "--memory-mb",
        type=int,
        default=5500,
        help="the memory budget of jobs side by side (snakemake --resources mem_mb), as make gives it",
    )
    bench.add_argument(
        "--shards",
        type=int,
        default=1,
        help="also run each size from scratch with cleaning.shards: K, and compare its "
        "published files with the one-job run's",
    )
    imp = sub.add_parser(
        "import-vickers2006",
        help="convert the acupuncture-for-headache trial file (Vickers 2006) to the raw-extract contract",
    )
    imp.add_argument("--source", type=Path, required=True, help="acupuncture_trial_data.csv")
    imp.add_argument("--out", type=Path, required=True)
    sub.add_parser(
        "lint", help="snakemake --lint, failing only on remarks other than the documented ones"
    )
    init = sub.add_parser(
        "init-study",
        help="draft a study file and a data contract from an extract's files (TODO marks)",
    )
    init.add_argument("--extract", type=Path, required=True, help="folder with the raw files")
    init.add_argument(
        "--name", required=True, help="the study's name (lower case, e.g. clinic2024)"
    )
    init.add_argument("--out-dir", type=Path, default=Path("config/studies"))
    check = sub.add_parser(
        "check",
        help="check a study file, its contract and its extract as snakemake would, before a run",
    )
    check.add_argument("--config", type=Path, required=True, help="the study file")
    pool = sub.add_parser(
        "pool",
        help="pool several sites' bundles (results/site_bundle.json of each) into one analysis",
    )
    pool.add_argument("bundles", type=Path, nargs="+", help="the sites' site_bundle.json files")
    pool.add_argument("--out", type=Path, default=Path("results/pooled"), help="output folder")
    pool.add_argument("--level", type=float, default=0.95, help="confidence level")
    pool.add_argument(
        "--case-mix",
        nargs="*",
        default=[],
        help="subgroup variables by which the between-site comparison is also adjusted",
    )
    docs = sub.add_parser(
        "config-docs",
        help="write docs/configuration.md and the key comments of config/config.yaml from the schema",
    )
    docs.add_argument("--check", action="store_true", help="only say whether they are up to date")
    return parser


def _add_synthesize(sub: argparse._SubParsersAction) -> None:
    """The synthesize command's arguments."""
    syn = sub.add_parser("synthesize", help="write a synthetic raw extract in the data contract")
    syn.add_argument("--n", type=int, required=True, help="number of included patients")
    syn.add_argument("--seed", type=int, required=True, help="random seed (same seed, same bytes)")
    syn.add_argument("--out", type=Path, required=True, help="output folder")
    syn.add_argument("--config", type=Path, default=Path("config/config.yaml"))
    syn.add_argument(
        "--fault-rate",
        type=float,
        default=0.01,
        help="faults of each class per included patient (at least one of each when > 0; 0 = none)",
    )
    syn.add_argument(
        "--faults",
        default=",".join(FAULT_CLASSES),
        help=f"comma-separated fault classes to inject (default: all of {', '.join(FAULT_CLASSES)})",
    )
    syn.add_argument(
        "--anchor",
        action="store_true",
        help="also write a patient global impression of change (pgic, 1-7) at every follow-up",
    )
    syn.add_argument(
        "--sites",
        default="",
        help="split the extract into sites of these shares, e.g. clinic_a=0.5,clinic_b=0.3: one "
        "folder per site under --out (the same patients as without it, each at one site)",
    )


def check_study(path: Path, config: dict, contract: Any) -> int:
    """`check`: what rules/common.smk checks before any rule (the study file, its merge over
    config/config.yaml, the schema, the contract and the columns the keys name, the output
    folders, the extract's files and columns), with cohort's own YAML reader, which names the
    line of a YAML error (Snakemake's does not)."""
    from cohort.io.contract import extract_problems
    from cohort.io.reading import check_extract

    problems = output_path_problems(
        config["output"], Path.cwd(), config["output"].get("allow_outside", False)
    )
    if problems:
        raise CohortError("\n  ".join(["invalid configuration:", *problems]))
    files = check_extract(config["extract"]["dir"], contract)
    extract_problems(config, contract, files)
    print(
        f"{path}: study {config['study']['name']} is ready to run "
        f"({', '.join(str(f) for f in files.values())}); "
        f"snakemake --configfile {path}"
    )
    return 0


def config_docs(root: Path, check: bool) -> int:
    """`config-docs`: docs/configuration.md and config.yaml's key comments from the schema's
    descriptions (cohort.workflow.config_docs); with --check, 1 when either is out of date."""
    from cohort.core.config import read_yaml
    from cohort.workflow.config_docs import commented_config, configuration_markdown

    schema = read_yaml(root / "config/config.schema.yaml")
    config_path, docs_path = root / "config/config.yaml", root / "docs/configuration.md"
    wanted = {
        config_path: commented_config(config_path.read_text(encoding="utf-8"), schema),
        docs_path: configuration_markdown(schema),
    }
    stale = [
        p for p, text in wanted.items() if not p.is_file() or p.read_text(encoding="utf-8") != text
    ]
    if check:
        for path in stale:
            print(f"{path}: out of date with config/config.schema.yaml", file=sys.stderr)
        return 1 if stale else 0
    for path in stale:
        path.write_text(wanted[path], encoding="utf-8")
        print(f"wrote {path}")
    return 0


def _site_shares(text: str) -> dict[str, float]:
    """`clinic_a=0.5,clinic_b=0.3` as {site: share}; ValueError naming a malformed part."""
    shares = {}
    for part in text.split(","):
        site, _, share = part.partition("=")
        try:
            shares[site.strip()] = float(share)
        except ValueError:
            raise ValueError(f"--sites: '{part}' is not site=share") from None
        if not site.strip().isidentifier():
            raise ValueError(f"--sites: '{site}' is not a site name (letters, digits, _)")
    return shares


def main(argv: list[str] | None = None) -> int:
    """Run one command; a user-facing fault prints one message and returns 2."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    without_config = {
        "init-study": _init_study,
        "pool": _pool,
        "config-docs": lambda a: config_docs(Path.cwd(), a.check),
        "lint": lambda a: _lint(),
        "import-vickers2006": _import_vickers2006,
    }
    try:
        if args.command in without_config:
            return without_config[args.command](args)
        if not args.config.is_file():
            raise CohortError(
                f"{args.config}: not found. `python -m cohort {args.command}` runs in a project "
                "folder, a clone of the cohort repository (its config/ holds the default study "
                "and the data contract): cd into one, or pass --config <study config>."
            )
        config = load_study(args.config)
        contract_path = getattr(args, "contract", None) or Path(config["extract"]["contract"])
        contract = load_contract(contract_path, config)
        if args.command == "check":
            return check_study(args.config, config, contract)
        if args.command == "bench":
            return _bench(args, config, contract)
        if args.command == "synthesize":
            return _synthesize(args, config, contract)
        args.out.write_text(
            data_dictionary_markdown(contract, contract_path.as_posix()), encoding="utf-8"
        )
    except (CohortError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def _lint() -> int:
    """lint: the workflow's Snakemake lint, less the documented remarks."""
    from cohort.workflow.lint import run_lint

    return run_lint(Path.cwd())


def _init_study(args: argparse.Namespace) -> int:
    """init-study: draft a study file and a contract from an extract."""
    from cohort.io.scaffold import init_study

    study, contract = init_study(args.extract, args.name, args.out_dir)
    print(
        f"wrote {study} and {contract}: fill in every TODO (and check the contract's "
        f"types, ranges and missing codes), then\n  python -m cohort check --config {study}"
        f"\n  snakemake --configfile {study}"
    )
    return 0


def _pool(args: argparse.Namespace) -> int:
    """pool: several sites' bundles pooled into one folder of tables and figures."""
    from cohort.workflow.stages.pooling import pool_stage

    missing = [str(p) for p in args.bundles if not p.is_file()]
    if missing:
        raise CohortError(f"bundle not found: {', '.join(missing)}")
    try:
        paths = pool_stage([str(p) for p in args.bundles], str(args.out), args.level, tuple(args.case_mix))  # fmt: skip
    except ValueError as error:
        raise CohortError(f"pool: {error}") from None
    print("wrote " + ", ".join(str(p) for p in paths.values()))
    return 0


def _import_vickers2006(args: argparse.Namespace) -> int:
    """import-vickers2006: the acupuncture trial's published data as a raw extract."""
    from cohort.io.importers import vickers2006

    if not args.source.is_file():
        raise CohortError(f"{args.source}: file not found")
    vickers2006.write_extract(vickers2006.import_trial(args.source), args.out)
    return 0


def _bench_runs(
    args: argparse.Namespace, config: dict[str, Any], contract: Contract
) -> list[tuple[str, int, Callable[..., Any]]]:
    """bench's runs: (name, patients, the run given its work folder), default study first."""
    from cohort.workflow.benchmark import (
        DEFAULT_STUDY_PATIENTS,
        benchmark_default_study,
        benchmark_size,
    )

    codebook = load_codebook(config["interventions"]["codebook"])
    return [
        *(
            (
                f"default{k}",
                DEFAULT_STUDY_PATIENTS,
                partial(
                    benchmark_default_study,
                    Path.cwd(),
                    cores=args.cores,
                    repeat=k,
                    memory_mb=args.memory_mb,
                ),
            )
            for k in range(1, args.default_study_runs + 1)
        ),
        *(
            (
                f"n{n}",
                n,
                partial(
                    benchmark_size,
                    n,
                    Path.cwd(),
                    contract=contract,
                    codebook=codebook,
                    cores=args.cores,
                    shards=args.shards,
                    memory_mb=args.memory_mb,
                ),
            )
            for n in args.sizes
        ),
    ]


def _bench(args: argparse.Namespace, config: dict[str, Any], contract: Contract) -> int:
    """bench: wall time and peak memory per rule, per cohort size (not a test); a run that
    fails is a row of the summary (its logs kept under the summary's folder), and the next
    size still runs."""
    import shutil
    import tempfile

    import pandas as pd

    from cohort.workflow.benchmark import REFERENCE, with_reference

    runs = _bench_runs(args, config, contract)
    frames, failed = [], 0
    with tempfile.TemporaryDirectory(prefix="cohort-bench-") as tmp:
        for name, patients, run in runs:
            try:
                frames.append(run(workdir=Path(tmp)))
            except RuntimeError as exc:  # a failed run: its row and its logs, then the next size
                kept = args.out.parent / "failed" / name
                shutil.rmtree(kept, ignore_errors=True)
                if (Path(tmp) / name / "logs").is_dir():
                    shutil.copytree(Path(tmp) / name / "logs", kept)
                print(f"cohort: bench: {name} failed; its logs are in {kept}", file=sys.stderr)
                note = f"{str(exc).splitlines()[0] if str(exc) else exc!r} (logs: {kept})"
                frames.append(
                    pd.DataFrame(
                        [
                            {
                                "cohort": name,
                                "patients": patients,
                                "step": "run failed",
                                "seconds": float("nan"),
                                "note": note,
                            }
                        ]
                    )
                )
                failed += 1
            summary = pd.concat(frames, ignore_index=True)
            if REFERENCE.is_file():  # this run against the last reference run
                summary = with_reference(summary, pd.read_csv(REFERENCE))
            args.out.parent.mkdir(parents=True, exist_ok=True)
            summary.to_csv(args.out, index=False, float_format="%.2f")
    print(summary.to_string(index=False, float_format=lambda x: f"{x:.1f}"))
    return 1 if failed else 0


def _synthesize(args: argparse.Namespace, config: dict[str, Any], contract: Contract) -> int:
    """synthesize: the synthetic extract, in one folder or split into sites."""
    classes = tuple(c for c in args.faults.split(",") if c)
    extract = synthesize(
        args.n,
        args.seed,
        contract,
        load_codebook(config["interventions"]["codebook"]),
        fault_rate=args.fault_rate,
        fault_classes=classes,
        anchor=args.anchor,
    )
    if not args.sites:
        write_extract(extract, args.out)
        return 0
    for site, part in split_by_site(extract, _site_shares(args.sites), args.seed).items():
        write_extract(part, args.out / site)
