"""The imputations of the pipeline: the frame the chained equations run on, the number of
imputations and the jobs that make them, the completed data sets and the analyses run on each
(pooled by Rubin's rules in cohort.analysis.imputation).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from cohort.analysis.imputation import log, mice
from cohort.analysis.responders import CATEGORIES, RESPONDER, category_codes, in_population
from cohort.core.settings import ImputationSettings, ModelTerms, Outcome
from cohort.io.outputs import read_parquet
from cohort.models.design import design_matrix, is_categorical
from cohort.models.logistic import LogisticFit, cluster_robust, logistic_regression


# --- The imputations of the pipeline: the frame, the jobs, the analyses of the completed sets --
def imputation_frame(
    patients: pd.DataFrame, columns: list[str]
) -> tuple[pd.DataFrame, dict[str, list[str]]]:
    """Numeric frame for MICE of `columns` (imputation_columns): categorical variables as integer
    codes of their observed levels, booleans as 0/1; returns it with the category levels to
    decode."""
    frame, levels = pd.DataFrame(index=patients.index), {}
    for c in columns:
        values = patients[c]
        if is_categorical(values):
            cat = values.astype("category").cat.remove_unused_categories()
            levels[c] = list(cat.cat.categories)
            frame[c] = cat.cat.codes.replace(-1, np.nan).astype(float)
        else:
            frame[c] = values.astype("Float64").astype(float)
    return frame, levels


def imputation_levels(
    patients: pd.DataFrame, frame: pd.DataFrame, levels: dict[str, list[str]]
) -> dict[str, int]:
    """The number of levels of each categorical or boolean column of the imputation frame, which
    sets its imputation method (cohort.analysis.imputation.imputation_method); a column with fewer than
    two observed levels has nothing to model and is left to PMM (it copies the one level)."""
    counts = {c: len(v) for c, v in levels.items()}
    for c in frame.columns:
        if c not in counts and pd.api.types.is_bool_dtype(patients[c].dtype):
            counts[c] = 2
    return {c: k for c, k in counts.items() if k >= 2}


def decode_imputed(
    patients: pd.DataFrame, imputed: pd.DataFrame, levels: dict[str, list[str]]
) -> pd.DataFrame:
    """The patient table with the imputed columns put back, categories with their original
    dtype (all declared levels, observed or not)."""
    out = patients.copy()
    for c in imputed.columns:
        if c in levels:
            values = pd.Categorical.from_codes(imputed[c].round().astype(int), categories=levels[c])
            dtype = patients[c].dtype
            out[c] = (
                values.set_categories(dtype.categories)
                if isinstance(dtype, pd.CategoricalDtype)
                else values
            )
        else:
            out[c] = imputed[c].to_numpy()
    return out


def number_of_imputations(frame: pd.DataFrame, settings: ImputationSettings) -> int:
    """`auto`: at least the percentage of incomplete cases (White, Royston, Wood 2011), min 5;
    then at most max(5, `max_imputed_records` / N), so that imputation work (m x N) stays
    bounded at registry scale (the cost of the cap shows in the reported Monte Carlo error)."""
    setting = settings.m
    if setting != "auto":
        return int(setting)
    incomplete = float(frame.isna().any(axis=1).mean())
    m = max(5, int(np.ceil(100 * incomplete)))
    cap = max(5, int(settings.max_imputed_records) // max(len(frame), 1))
    if m > cap:
        log.info("m = %d by the incomplete share, capped at %d for N = %d", m, cap, len(frame))
    return min(m, cap)


def imputation_variables(terms: ModelTerms) -> list[str]:
    """Baseline variables of the imputation model besides the outcomes: covariates, dose and
    the categories received (the explanatory variables of the response models)."""
    return list(
        dict.fromkeys(
            [
                *terms.covariates,
                *([terms.dose] if terms.dose else []),
                *(f"received_{c}" for c in terms.categories),
            ]
        )
    )


def imputation_columns(terms: ModelTerms, outcomes: list[str], occasions: list[str]) -> list[str]:
    """Every column of the imputation model: the baseline variables (imputation_variables) and
    each outcome at each occasion."""
    outcome_columns = [f"{o}_{occ}" for o in outcomes for occ in occasions]
    return list(dict.fromkeys([*imputation_variables(terms), *outcome_columns]))


def not_imputable(frame: pd.DataFrame, donors: int) -> dict[str, str]:
    """Columns with missing values that MICE should not impute: fewer than 2 x `donors`
    observed values (predictive mean matching draws each value among the `donors` nearest
    observed cases; with fewer, the donor pool is most of the sample and the imputations
    repeat a handful of patients). Left missing, with the reason; the analyses of those
    outcomes say they are not estimable."""
    least = max(2, 2 * donors)
    return {
        c: f"{int(frame[c].notna().sum())} observed value(s), fewer than {least} "
        f"(2 x the {donors} PMM donors): not imputed"
        for c in frame.columns
        if frame[c].isna().any() and frame[c].notna().sum() < least
    }


def impute_part(
    patients: pd.DataFrame,
    columns: list[str],
    settings: ImputationSettings,
    part: int,
    parts: int,
) -> tuple[pd.DataFrame, int]:
    """Imputations part, part + parts, ... of the m (one Snakemake job each part) of `columns`
    (imputation_columns): the imputed columns in long form (imputation, row, values), and m."""
    frame, levels = imputation_frame(patients, columns)
    m = number_of_imputations(frame, settings)
    skipped = not_imputable(frame, settings.donors)
    for column, reason in skipped.items():
        log.warning("multiple imputation: %s: %s", column, reason)
    frame = frame.drop(columns=list(skipped))
    incomplete = [c for c in frame.columns if frame[c].isna().any()]
    log.info(
        "multiple imputation: m = %d, this job %d of %d; %d iterations; %d of %d patients incomplete",
        m,
        part + 1,
        parts,
        settings.iterations,
        int(frame.isna().any(axis=1).sum()),
        len(frame),
    )
    chains = mice(
        frame,
        list(range(part, m, parts)),
        settings.iterations,
        settings.seed,
        settings.donors,
        imputation_levels(patients, frame, levels),
    )
    pieces = [
        completed[incomplete].assign(imputation=i, row=np.arange(len(frame)))
        for i, completed in chains
    ]
    empty = pd.DataFrame(columns=[*incomplete, "imputation", "row"], dtype=float)
    return (pd.concat(pieces, ignore_index=True) if pieces else empty), m


def write_part(imputed: pd.DataFrame, path: str, patients: int) -> None:
    """A part of rule impute as parquet, one row group per imputation (`patients` rows each),
    so that ImputationParts reads one imputation without the others."""
    imputed.to_parquet(path, index=False, row_group_size=max(patients, 1))


@dataclass(frozen=True)
class ImputationParts:
    """The parts rule impute wrote, read one imputation at a time: at 10^6 patients all m
    imputations together are 1.2 GB, which predictors, tipping_point and clinical_significance
    held to their end."""

    paths: tuple[str, ...]

    def imputations(self) -> list[int]:
        """The imputations found in the parts (their `imputation` column only)."""
        found = (read_parquet(p, columns=["imputation"])["imputation"] for p in self.paths)
        return sorted({int(i) for column in found for i in column.unique()})

    def rows_of(self, imputation: int) -> pd.DataFrame:
        """One imputation's rows (a row group of its part: the others are not read)."""
        rows = [read_parquet(p, filters=[("imputation", "==", imputation)]) for p in self.paths]
        return pd.concat(rows, ignore_index=True)


def read_parts(paths: list[str]) -> ImputationParts:
    """The imputation parts written by the jobs of rule impute (read lazily, per imputation)."""
    return ImputationParts(tuple(paths))


def completed_data_sets(
    patients: pd.DataFrame,
    columns: list[str],
    settings: ImputationSettings,
    parts: ImputationParts | pd.DataFrame,
) -> Iterator[pd.DataFrame]:
    """The m completed patient tables from the imputation parts (files, or stacked in one
    table), one at a time (the m tables are never all in memory); checks that imputations
    0..m-1 each have every patient."""
    frame, levels = imputation_frame(patients, columns)
    m = number_of_imputations(frame, settings)
    if isinstance(parts, ImputationParts):
        found = parts.imputations()
        groups: Iterable[tuple[int, pd.DataFrame]] = ((i, parts.rows_of(i)) for i in found)
    else:
        found = sorted(parts["imputation"].astype(int).unique()) if len(parts) else []
        groups = parts.groupby("imputation", sort=True)
    if found != list(range(m)):
        raise AssertionError(f"imputations {found} found, 0..{m - 1} expected")
    for i, rows in groups:
        if len(rows) != len(patients) or not (rows["row"].to_numpy() == np.arange(len(rows))).all():
            raise AssertionError(f"imputation {i}: {len(rows)} rows for N = {len(patients)}")
        yield decode_imputed(patients, rows.drop(columns=["imputation", "row"]), levels)


@dataclass
class ImputedAnalyses:
    """Per outcome and follow-up: the responder rate and its denominator, and the logistic fit,
    in each imputed data set (the inputs of Rubin's rules)."""

    m: int = 0
    rates: dict[tuple[str, str], list[tuple[float, int]]] = field(default_factory=dict)
    fits: dict[tuple[str, str], list[LogisticFit]] = field(default_factory=dict)
    notes: dict[tuple[str, str], set[str]] = field(default_factory=dict)


def analyse_imputed(
    completed: Iterable[pd.DataFrame],
    outcomes: dict[str, Outcome],
    occasions: list[str],
    handling: str,
    terms_of: Any,
    firth_models: set[tuple[str, str]] | None = None,
    cluster: str | None = None,
    batch_rows: int = 200_000,
) -> ImputedAnalyses:
    """Classify each completed data set with the MCID rule and fit the response models in it
    (by Firth's penalised likelihood for the models in `firth_models`, as in the complete-case
    analysis, so that every imputation uses the same estimator). Small data sets are stacked
    into batches of about `batch_rows` rows, so that the design matrices and classifications
    are built once per batch (same numbers: both act row by row). With a `cluster`, each fit's
    covariance is cluster-robust, as in the complete-case models."""
    results = ImputedAnalyses()
    rules = (outcomes, occasions, handling)
    batch: list[pd.DataFrame] = []
    firth_models = firth_models or set()
    for data in completed:
        batch.append(data)
        if len(batch) * len(data) >= batch_rows:
            _analyse_batch(batch, rules, terms_of, firth_models, cluster, results)
            batch = []
    if batch:
        _analyse_batch(batch, rules, terms_of, firth_models, cluster, results)
    return results


def _analyse_batch(
    batch: list[pd.DataFrame],
    rules: tuple[dict[str, Outcome], list[str], str],
    terms_of: Any,
    firth_models: set[tuple[str, str]],
    cluster: str | None,
    results: ImputedAnalyses,
) -> None:
    """`analyse_imputed` for completed data sets of equal length, stacked; `rules` = its
    outcomes, occasions and could-not-improve handling."""
    outcomes, occasions, handling = rules
    n = len(batch[0])
    data = pd.concat(batch, ignore_index=True) if len(batch) > 1 else batch[0]
    categories = {  # indices into CATEGORIES
        (outcome, occasion): category_codes(
            data[spec.column_at(occasions[0])].to_numpy(dtype=float, na_value=np.nan),
            data[spec.column_at(occasion)].to_numpy(dtype=float, na_value=np.nan),
            spec,
        )
        for outcome, spec in outcomes.items()
        for occasion in occasions[1:]
    }
    responder = CATEGORIES.index(RESPONDER)
    clusters = data[cluster].to_numpy() if cluster else None
    unobserved = {  # not imputed (too few observed values): not estimable
        (outcome, occasion)
        for outcome in outcomes
        for occasion in occasions[1:]
        if data[[f"{outcome}_{occasions[0]}", f"{outcome}_{occasion}"]].isna().any(axis=None)
    }
    first = results.m + 1
    results.m += len(batch)
    for outcome in outcomes:  # one outcome's design at a time (0.1 GB each at 10^6 patients)
        design = None
        for j in range(len(batch)):  # each key's fits in imputation order: the warm starts
            rows_of_set = slice(j * n, (j + 1) * n)
            for occasion in occasions[1:]:
                key = (outcome, occasion)
                if key in unobserved:
                    results.notes.setdefault(key, set()).add(
                        "not estimable: too few patients measured at this occasion to impute"
                    )
                    continue
                if design is None:
                    design = design_matrix(data, terms_of(outcome))
                x_all, names_all = design[0][rows_of_set], design[1]
                cat = categories[key][rows_of_set]
                population = in_population(cat, handling)
                d = int(population.sum())  # no follow-up is missing after imputation
                results.rates.setdefault(key, []).append((int((cat == responder).sum()) / d, d))
                rows = ~np.isnan(x_all).any(axis=1) & population
                if clusters is not None:
                    rows &= pd.notna(clusters[rows_of_set])
                x = x_all[rows]
                used = [c for c, name in enumerate(names_all) if "[T." not in name or x[:, c].any()]  # fmt: skip
                if len(used) < x.shape[1]:  # else no copy of the design
                    x = x[:, used]
                notes = results.notes.setdefault(key, set())
                names = [names_all[c] for c in used]
                previous = results.fits.get(key, [])
                start = previous[-1].params if previous and previous[-1].names == names else None
                try:
                    fit = logistic_regression(
                        (cat[rows] == responder).astype(float),
                        x,
                        names,
                        start=start,
                        firth=key in firth_models,
                    )
                except (ValueError, np.linalg.LinAlgError) as exc:
                    notes.add(f"{type(exc).__name__}: {exc}")
                    continue
                if clusters is not None:
                    y = (cat[rows] == responder).astype(float)
                    fit = cluster_robust(fit, y, x, clusters[rows_of_set][rows])
                notes.update(fit.warnings)
                results.fits.setdefault(key, []).append(fit)
    log.info("imputed data sets %d to %d analysed", first, results.m)
