"""Synthetic raw extract of the default study, calibrated to the paper (Table 2, the abstract and
the ASSUMPTIONs of paper-facts.md), with optional injected data faults.

All draws are vectorised (no per-patient Python), so 10^6 patients take seconds. Variables are
linked through a Gaussian copula: a latent severity drives start pain, disability, health and
anxiety; a latent benefit drives the improvement at discharge and (correlated) at 1 year; loss to
follow-up depends on age and number of sessions (MAR given observed data).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize, stats

from cohort.core.frames import csv_numbers
from cohort.io.contract import Contract
from cohort.io.synthetic_faults import FAULT_CLASSES, inject_faults

log = logging.getLogger(__name__)

# --- Calibration targets -------------------------------------------------------------------------
# Table 2 of Trulsson Schouenborg et al. 2021 (n = 274) unless marked ASSUMPTION.
AGE_MEAN, AGE_SD, AGE_MIN, AGE_MAX = 42.0, 13.4, 18, 77
P_FEMALE = 194 / 274
BMI_MEAN, BMI_SD = 25.0, 4.1
P_SMOKER = 21 / 274
PAIN_DURATION_QUARTILES = (516.0, 1015.0, 2514.0)  # days: Q1, median, Q3
PAIN_DISTRIBUTION = {"localized": 104, "regional": 145, "generalized": 16}  # valid n 265
P_MISSING_PAIN_DISTRIBUTION = 9 / 274
MAIN_PAIN_LOCATION = {
    "neck": 76,
    "no_single_region": 65,
    "lumbar_thoracic_pelvis": 60,
    "lower_limb": 47,
    "upper_limb": 22,
}  # valid n 270
P_MISSING_MAIN_PAIN_LOCATION = 4 / 274
# Ability to reduce pain 0-6; 42% "low" (0-2). The split across levels is an ASSUMPTION.
ABILITY_PROBS = (0.06, 0.14, 0.22, 0.22, 0.18, 0.12, 0.06)
P_PHYSICALLY_ACTIVE = 48 / 134
P_MISSING_PHYSICALLY_ACTIVE = 1 - 134 / 274
# Goals: median 2 [2, 3]; the split across 1-5 is an ASSUMPTION.
GOALS_VALUES, GOALS_PROBS = (1, 2, 3, 4, 5), (0.15, 0.40, 0.30, 0.10, 0.05)
P_ANXIOUS_DEPRESSED = 62 / 274
# NPRS at start, median 7 [5, 8]; the split across 0-10 is an ASSUMPTION that has those quartiles.
NPRS_PROBS = (0.005, 0.01, 0.025, 0.05, 0.08, 0.12, 0.15, 0.18, 0.18, 0.12, 0.08)
# DRI at start, median 49 [31, 62] mm; EQ VAS 50 [35, 70]: piecewise-linear quantile functions
# through the published quartiles (tails: ASSUMPTION).
DRI_KNOTS = ((0.0, 2.0), (0.25, 31.0), (0.5, 49.0), (0.75, 62.0), (1.0, 95.0))
EQVAS_KNOTS = ((0.0, 5.0), (0.25, 35.0), (0.5, 50.0), (0.75, 70.0), (1.0, 95.0))
# Responder rates with the default MCID rules (abstract: discharge; ASSUMPTION: 1 year).
RESPONDER_TARGETS = {
    "discharge": {"pain": 0.45, "disability": 0.61, "health": 0.50},
    "followup_1y": {"pain": 0.44, "disability": 0.59, "health": 0.49},
}
# Default MCIDs (config.yaml; ASSUMPTION) and the SD of individual improvement (ASSUMPTION).
MCID = {"pain": 2.0, "disability": 10.0, "health": 10.0}
IMPROVEMENT_SD = {"pain": 2.2, "disability": 18.0, "health": 20.0}
# Dose (abstract: median 9 sessions over a median 5 months; ASSUMPTION: quartiles).
SESSIONS_QUARTILES = (6.0, 9.0, 14.0)
PROGRAMME_MONTHS_QUARTILES = (3.0, 5.0, 8.0)
DAYS_PER_MONTH = 365.25 / 12
# Loss to follow-up (ASSUMPTION): share missing, more for younger and fewer sessions.
P_MISSING_OCCASION = {"discharge": 0.10, "followup_1y": 0.30}
MISSING_LOGIT_AGE_PER_SD = -0.4
MISSING_LOGIT_PER_LOG_SESSIONS = -0.6
DRI_ITEM_MISSING = 0.015
INCLUSION_START, INCLUSION_DAYS = np.datetime64("2014-01-01"), 5 * 365
EQ5D_5L_FROM = np.datetime64("2016-01-01")  # ASSUMPTION: the clinic moved from 3L to 5L in 2016


@dataclass(frozen=True)
class SyntheticExtract:
    """The three raw tables (all values as text, as in a CSV) and the list of injected faults."""

    patients: pd.DataFrame
    sessions: pd.DataFrame
    assessments: pd.DataFrame
    faults: pd.DataFrame


# --- Small distribution helpers ------------------------------------------------------------------
def _split_lognormal(z: np.ndarray, quartiles: tuple[float, float, float]) -> np.ndarray:
    """Log-scale split normal: exact Q1, median and Q3 for a skewed positive variable."""
    q1, med, q3 = np.log(quartiles)
    z75 = stats.norm.ppf(0.75)
    scale = np.where(z < 0, (med - q1) / z75, (q3 - med) / z75)
    return np.exp(med + z * scale)


def _discrete(z: np.ndarray, values: np.ndarray, probs: tuple[float, ...]) -> np.ndarray:
    """Map a standard normal latent to a discrete distribution (Gaussian copula)."""
    cum = np.cumsum(probs)
    cum[-1] = 1.0
    idx = np.searchsorted(cum, stats.norm.cdf(z), side="right")
    return np.asarray(values)[np.minimum(idx, len(values) - 1)]


def _piecewise(z: np.ndarray, knots: tuple[tuple[float, float], ...]) -> np.ndarray:
    """Map a standard normal latent through a piecewise-linear quantile function."""
    p, x = zip(*knots, strict=True)
    return np.interp(stats.norm.cdf(z), p, x)


def _piecewise_cdf(value: float, knots: tuple[tuple[float, float], ...]) -> float:
    p, x = zip(*knots, strict=True)
    return float(np.interp(value, x, p))


def _truncated_normal_params(
    mean: float, sd: float, low: float, high: float
) -> tuple[float, float]:
    """Location and scale of a normal truncated to [low, high] with the given mean and SD."""

    def gap(params: np.ndarray) -> list[float]:
        mu, sigma = params
        a, b = (low - mu) / sigma, (high - mu) / sigma
        m, v = stats.truncnorm.stats(a, b, loc=mu, scale=sigma, moments="mv")
        return [float(m) - mean, float(np.sqrt(v)) - sd]

    mu, sigma = optimize.fsolve(gap, x0=[mean, sd])
    return float(mu), float(sigma)


def _correlated(rng: np.random.Generator, base: np.ndarray, rho: float) -> np.ndarray:
    """A standard normal with correlation `rho` to the standard normal `base`."""
    return rho * base + np.sqrt(1 - rho**2) * rng.standard_normal(base.shape)


def _logistic_intercept(linear: np.ndarray, target: float) -> float:
    """Intercept such that the mean of expit(intercept + linear) equals `target`."""
    return optimize.brentq(
        lambda a: float(np.mean(1 / (1 + np.exp(-(a + linear))))) - target, -30, 30
    )


def _improvement_mean(outcome: str, target: float) -> float:
    """Mean improvement so that P(responder) = target, given the room to improve at start.

    A responder needs (rounded) improvement >= MCID and a start value with that much room; the
    improvement is drawn independently of the start value, so P = P(room) * P(improvement >= t).
    """
    if outcome == "pain":  # integer scale: round(improvement) >= 2  <=>  improvement >= 1.5
        threshold, room = MCID["pain"] - 0.5, 1 - sum(NPRS_PROBS[: int(MCID["pain"])])
    elif outcome == "disability":  # continuous: start must be >= 10 mm
        threshold, room = MCID["disability"], 1 - _piecewise_cdf(MCID["disability"], DRI_KNOTS)
    else:  # EQ VAS, integer, higher is better: start must be <= 90
        threshold = MCID["health"] - 0.5
        room = _piecewise_cdf(100 - MCID["health"] + 0.5, EQVAS_KNOTS)
    return threshold + IMPROVEMENT_SD[outcome] * stats.norm.ppf(target / room)


def _fmt_date(days: np.ndarray) -> np.ndarray:
    return np.datetime_as_string(days.astype("datetime64[D]"), unit="D")


# --- The generator -------------------------------------------------------------------------------
def synthesize(
    n: int,
    seed: int,
    contract: Contract,
    codebook: dict[str, dict[str, Any]],
    fault_rate: float = 0.01,
    fault_classes: tuple[str, ...] = FAULT_CLASSES,
    anchor: bool = False,
) -> SyntheticExtract:
    """Generate `n` included patients (plus injected faults) as raw text tables in the contract;
    with `anchor`, a patient global impression of change (`pgic`) at every follow-up, drawn from
    its own random stream so that the other columns are the same bytes as without it."""
    if n < 1:
        raise ValueError("n must be at least 1")
    unknown = set(fault_classes) - set(FAULT_CLASSES)
    if unknown:
        raise ValueError(f"unknown fault classes: {sorted(unknown)}; known: {FAULT_CLASSES}")
    rng = np.random.default_rng(seed)
    log.info("synthesize: %d patients, seed %d", n, seed)
    patients, latent = _patients(rng, n)
    log.info("synthesize: patients drawn (1/4)")
    sessions, dose = _sessions(rng, latent, codebook)
    log.info("synthesize: %d sessions drawn (2/4)", len(sessions))
    assessments = _assessments(
        rng, latent, dose, np.random.default_rng([seed, 1]) if anchor else None
    )
    log.info("synthesize: %d assessments drawn (3/4)", len(assessments))
    tables = {"patients": patients, "sessions": sessions, "assessments": assessments}
    tables = {name: _in_contract_order(df, contract.table(name)) for name, df in tables.items()}
    if anchor:  # declared by the study that uses it (contract ANCHOR_COLUMN), not by the default
        tables["assessments"][ANCHOR_COLUMN] = assessments[ANCHOR_COLUMN].to_numpy()
    counts = {c: (max(1, round(fault_rate * n)) if fault_rate > 0 else 0) for c in fault_classes}
    tables, faults = inject_faults(rng, tables, counts, contract, codebook)
    log.info("synthesize: faults injected (4/4)")
    log.info(
        "synthesize: %d patient rows, %d session rows, %d assessment rows, %d injected faults",
        len(tables["patients"]),
        len(tables["sessions"]),
        len(tables["assessments"]),
        len(faults),
    )
    return SyntheticExtract(tables["patients"], tables["sessions"], tables["assessments"], faults)


def _in_contract_order(df: pd.DataFrame, table: Any) -> pd.DataFrame:
    return df[[c for c in table.columns if c in df.columns]].reset_index(drop=True)


def _patients(rng: np.random.Generator, n: int) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    width = max(4, len(str(n * 2)))
    ids = np.char.add("P", np.char.zfill(np.arange(1, n + 1).astype(str), width))
    severity = rng.standard_normal(n)
    mu, sigma = _truncated_normal_params(AGE_MEAN + 0.5, AGE_SD, AGE_MIN, AGE_MAX + 1)
    a, b = (AGE_MIN - mu) / sigma, (AGE_MAX + 1 - mu) / sigma
    age = np.floor(stats.truncnorm.rvs(a, b, loc=mu, scale=sigma, size=n, random_state=rng))
    age = np.clip(age, AGE_MIN, AGE_MAX)
    sex = np.where(rng.random(n) < P_FEMALE, "F", "M")
    bmi = np.clip(BMI_MEAN + BMI_SD * rng.standard_normal(n), 15, 50)
    smoker = np.where(rng.random(n) < P_SMOKER, "yes", "no")
    # Chronic pain lasts at least 3 months and began after age 5 (ASSUMPTION).
    duration = _split_lognormal(rng.standard_normal(n), PAIN_DURATION_QUARTILES)
    duration = np.clip(duration, 90, (age - 5) * 365.25)
    distribution = _discrete(
        _correlated(rng, severity, 0.3),
        np.array(list(PAIN_DISTRIBUTION)),
        tuple(v / sum(PAIN_DISTRIBUTION.values()) for v in PAIN_DISTRIBUTION.values()),
    )
    distribution = np.where(rng.random(n) < P_MISSING_PAIN_DISTRIBUTION, "", distribution)
    location = rng.choice(
        np.array(list(MAIN_PAIN_LOCATION)),
        size=n,
        p=np.array(list(MAIN_PAIN_LOCATION.values())) / sum(MAIN_PAIN_LOCATION.values()),
    )
    location = np.where(rng.random(n) < P_MISSING_MAIN_PAIN_LOCATION, "", location)
    ability = _discrete(_correlated(rng, -severity, 0.3), np.arange(7), ABILITY_PROBS)
    active = np.where(rng.random(n) < P_PHYSICALLY_ACTIVE, "yes", "no")
    active = np.where(rng.random(n) < P_MISSING_PHYSICALLY_ACTIVE, "", active)
    goals = _discrete(rng.standard_normal(n), np.array(GOALS_VALUES), GOALS_PROBS)
    patients = pd.DataFrame(
        {
            "patient_id": ids,
            "sex": sex,
            "age": csv_numbers(age),
            "included": "yes",
            "exclusion_reason": "",
            "bmi": csv_numbers(bmi, 1),
            "smoker": smoker,
            "pain_duration_days": csv_numbers(np.round(duration)),
            "pain_distribution": distribution,
            "main_pain_location": location,
            "ability_to_reduce_pain": csv_numbers(ability),
            "physically_active_150": active,
            "n_goals": csv_numbers(goals),
        }
    )
    latent = {"ids": ids, "severity": severity, "age": age}
    return patients, latent


def _sessions(
    rng: np.random.Generator, latent: dict[str, np.ndarray], codebook: dict[str, dict[str, Any]]
) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    n = len(latent["ids"])
    dose = rng.standard_normal(n)
    n_sessions = np.clip(np.round(_split_lognormal(dose, SESSIONS_QUARTILES)), 1, 80).astype(int)
    months = np.minimum(
        _split_lognormal(_correlated(rng, dose, 0.5), PROGRAMME_MONTHS_QUARTILES), 36
    )
    length = np.where(
        n_sessions > 1, np.maximum(np.round(months * DAYS_PER_MONTH), n_sessions - 1), 0
    )
    start = INCLUSION_START + rng.integers(0, INCLUSION_DAYS, n).astype("timedelta64[D]")
    patient = np.repeat(np.arange(n), n_sessions)
    first_of = np.concatenate([[0], np.cumsum(n_sessions)[:-1]])
    position = np.arange(len(patient)) - first_of[patient]
    last = position == n_sessions[patient] - 1
    # Distinct session days: first on day 0, last on the final day, the others strictly between.
    u = rng.random(len(patient))
    u = u[np.lexsort((u, patient))]  # sorted within patient
    free = length[patient] - n_sessions[patient] + 1
    offset = np.floor(u * free) + position
    offset = np.where(position == 0, 0, np.where(last, length[patient], offset))
    dates = start[patient] + offset.astype("timedelta64[D]")
    codes = list(codebook)
    received = np.column_stack(
        [rng.random(n) < codebook[c].get("synthetic_pct", 50) / 100 for c in codes]
    )
    received[~received.any(axis=1), 0] = True
    # Each received category is used in a share of the patient's sessions, at least once.
    use_share = rng.uniform(0.3, 0.9, len(codes))
    mask = np.zeros(len(patient), dtype=np.int64)
    for k in range(len(codes)):
        used = received[patient, k] & (rng.random(len(patient)) < use_share[k])
        anchor = first_of + np.floor(rng.random(n) * n_sessions).astype(int)
        used[anchor[received[:, k]]] = True
        mask |= used.astype(np.int64) << k
    # A session with no category gets the patient's lowest-numbered received category.
    lowest = np.argmax(received, axis=1)
    empty = mask == 0
    mask[empty] = np.int64(1) << lowest[patient[empty]]
    lookup = np.array(
        [";".join(c for k, c in enumerate(codes) if m >> k & 1) for m in range(2 ** len(codes))]
    )
    sessions = pd.DataFrame(
        {
            "patient_id": latent["ids"][patient],
            "session_date": _fmt_date(dates),
            "interventions": lookup[mask],
        }
    )
    return sessions, {
        "n_sessions": n_sessions,
        "start": start,
        "end": start + length.astype("timedelta64[D]"),
    }


def _dri_items(rng: np.random.Generator, target: np.ndarray) -> np.ndarray:
    """12 DRI items (mm) whose mean is `target`: target scaled by Dirichlet weights of mean 1."""
    g = rng.gamma(8.0, size=(len(target), 12))
    w = 12 * g / g.sum(axis=1, keepdims=True)
    low = target[:, None] * w
    high = 100 - (100 - target[:, None]) * w
    items = np.clip(np.where(target[:, None] <= 50, low, high), 0, 100)
    items = np.round(items)
    items[rng.random(items.shape) < DRI_ITEM_MISSING] = np.nan
    return items


def _eq5d(
    rng: np.random.Generator, severity: np.ndarray, is_5l: np.ndarray
) -> dict[str, np.ndarray]:
    """EQ-5D dimension levels; anxiety/depression >= 2 with the Table 2 share at start."""
    p_ad = P_ANXIOUS_DEPRESSED
    dims = {}
    for dim, rho, p_problem in (
        ("mo", 0.4, 0.45),
        ("sc", 0.3, 0.15),
        ("ua", 0.5, 0.75),
        ("pd", 0.5, 0.95),
        ("ad", 0.4, p_ad),
    ):
        z = _correlated(rng, severity, rho)
        probs_3l = (1 - p_problem, p_problem * 0.8, p_problem * 0.2)
        probs_5l = (
            1 - p_problem,
            p_problem * 0.45,
            p_problem * 0.35,
            p_problem * 0.15,
            p_problem * 0.05,
        )
        level = np.where(
            is_5l, _discrete(z, np.arange(1, 6), probs_5l), _discrete(z, np.arange(1, 4), probs_3l)
        )
        dims[f"eq5d_{dim}"] = level.astype(float)
    return dims


# PGIC (Guy, ECDEU Assessment Manual 1976; Farrar et al. Pain 2001): 1 very much improved, 2 much
# improved, 3 minimally improved, 4 no change, 5 minimally worse, 6 much worse, 7 very much worse.
# Cut-points on the patient's mean improvement in SD units of each outcome's change, plus noise.
ANCHOR_COLUMN = "pgic"
ANCHOR_CONTRACT = {  # the contract entry of the anchor column, for a study that uses it
    "type": "integer",
    "min": 1,
    "max": 7,
    "description": "Patient global impression of change since the start (1 very much improved, "
    "3 minimally improved, 4 no change, 7 very much worse; Guy 1976).",
}
PGIC_CUTS = (1.6, 1.0, 0.45, -0.1, -0.6, -1.2)
PGIC_NOISE_SD = 0.5


def _global_impression(
    rng: np.random.Generator, start: dict[str, np.ndarray], follow: dict[str, np.ndarray]
) -> np.ndarray:
    """A PGIC level per patient, worse as the outcomes' improvement (in SD units) is smaller."""
    signs = {"pain": -1.0, "disability": -1.0, "health": 1.0}
    z = np.mean(
        [signs[o] * (follow[o] - start[o]) / IMPROVEMENT_SD[o] for o in signs], axis=0
    ) + PGIC_NOISE_SD * rng.standard_normal(len(start["pain"]))
    return 1 + np.sum([z < cut for cut in PGIC_CUTS], axis=0)


def _assessments(
    rng: np.random.Generator,
    latent: dict[str, np.ndarray],
    dose: dict[str, np.ndarray],
    anchor_rng: np.random.Generator | None = None,
) -> pd.DataFrame:
    n = len(latent["ids"])
    severity = latent["severity"]
    start_values = {
        "pain": _discrete(_correlated(rng, severity, 0.6), np.arange(11), NPRS_PROBS).astype(float),
        "disability": _piecewise(_correlated(rng, severity, 0.6), DRI_KNOTS),
        "health": np.round(_piecewise(_correlated(rng, -severity, 0.5), EQVAS_KNOTS)),
    }
    benefit = rng.standard_normal(n)
    latent_change = {o: _correlated(rng, benefit, 0.6) for o in start_values}
    age_z = (latent["age"] - AGE_MEAN) / AGE_SD
    log_sessions = np.log(dose["n_sessions"]) - np.log(SESSIONS_QUARTILES[1])
    dates = {
        "start": dose["start"],
        "discharge": dose["end"] + rng.integers(0, 15, n).astype("timedelta64[D]"),
    }
    dates["followup_1y"] = dates["discharge"] + (365 + rng.integers(-30, 31, n)).astype(
        "timedelta64[D]"
    )
    frames = []
    for occasion in ("start", "discharge", "followup_1y"):
        values = {}
        if occasion == "start":
            values = dict(start_values)
            present = np.ones(n, dtype=bool)
            eq_severity = severity
        else:
            linear = (
                MISSING_LOGIT_AGE_PER_SD * age_z + MISSING_LOGIT_PER_LOG_SESSIONS * log_sessions
            )
            intercept = _logistic_intercept(linear, P_MISSING_OCCASION[occasion])
            present = rng.random(n) >= 1 / (1 + np.exp(-(intercept + linear)))
            for outcome, start in start_values.items():
                z = latent_change[outcome]
                if occasion == "followup_1y":
                    z = _correlated(rng, z, 0.75)
                improvement = _improvement_mean(outcome, RESPONDER_TARGETS[occasion][outcome])
                improvement = improvement + IMPROVEMENT_SD[outcome] * z
                if outcome == "pain":
                    values[outcome] = np.clip(start - np.round(improvement), 0, 10)
                elif outcome == "disability":
                    values[outcome] = np.clip(start - improvement, 0, 100)
                else:
                    values[outcome] = np.clip(start + np.round(improvement), 0, 100)
            eq_severity = _correlated(rng, severity, 0.8) - 0.3 * benefit
        is_5l = dates[occasion] >= EQ5D_5L_FROM
        items = _dri_items(rng, values["disability"])
        frame = {
            "patient_id": latent["ids"],
            "occasion": occasion,
            "assessed_on": _fmt_date(dates[occasion]),
            "nprs": csv_numbers(values["pain"]),
        }
        frame.update({f"dri_{j + 1:02d}": csv_numbers(items[:, j]) for j in range(12)})
        frame["eq5d_version"] = np.where(is_5l, "5L", "3L")
        frame.update({k: csv_numbers(v) for k, v in _eq5d(rng, eq_severity, is_5l).items()})
        frame["eqvas"] = csv_numbers(values["health"])
        if anchor_rng is not None:
            frame[ANCHOR_COLUMN] = (
                np.full(n, "", dtype=object)
                if occasion == "start"
                else csv_numbers(_global_impression(anchor_rng, start_values, values))
            )
        frame["_patient"] = np.arange(n)
        frames.append(pd.DataFrame(frame)[present])
    assessments = pd.concat(frames, ignore_index=True)
    order = {"start": 0, "discharge": 1, "followup_1y": 2}
    assessments["_occ"] = assessments["occasion"].map(order)
    assessments = assessments.sort_values(["_patient", "_occ"], kind="stable")
    return assessments.drop(columns=["_patient", "_occ"])


def site_sizes(n: int, shares: dict[str, float]) -> dict[str, int]:
    """Patients per site for `n` patients and the sites' shares (largest remainder, so that
    the sizes add up to n)."""
    if not shares or any(not share > 0 for share in shares.values()):
        raise ValueError(f"site shares must be positive: {shares}")
    total = sum(shares.values())
    exact = {site: n * share / total for site, share in shares.items()}
    sizes = {site: int(np.floor(v)) for site, v in exact.items()}
    by_remainder = sorted(exact, key=lambda site: (sizes[site] - exact[site], site))
    for site in by_remainder[: n - sum(sizes.values())]:
        sizes[site] += 1
    return sizes


def split_by_site(
    extract: SyntheticExtract, shares: dict[str, float], seed: int
) -> dict[str, SyntheticExtract]:
    """The extract split into sites (clinics) of the given shares: each patient identifier,
    with every row that carries it in any table (faulty rows too), goes to one site drawn from
    its own random stream; injected faults follow their rows, with the site file's row number.
    Every raw row lands in exactly one site."""
    ids = pd.unique(
        pd.concat([extract.patients["patient_id"], extract.sessions["patient_id"],
                   extract.assessments["patient_id"]]).fillna("").to_numpy()
    )  # fmt: skip
    sizes = site_sizes(len(ids), shares)
    order = np.random.default_rng([seed, 2]).permutation(len(ids))
    labels = np.repeat(np.array(list(sizes), dtype=object), list(sizes.values()))
    site_of = pd.Series(labels[np.argsort(order)], index=ids)
    tables = {t: getattr(extract, t) for t in ("patients", "sessions", "assessments")}
    where = {t: site_of.reindex(df["patient_id"].fillna("").to_numpy()).to_numpy() for t, df in tables.items()}  # fmt: skip
    fault_site = np.array(
        [
            where[t][row - 2]
            for t, row in zip(extract.faults["table"], extract.faults["source_row"], strict=True)
        ],
        dtype=object,
    )
    out = {}
    for site in shares:
        parts = {t: df[where[t] == site].reset_index(drop=True) for t, df in tables.items()}
        faults = extract.faults[fault_site == site].copy()
        for t in tables:  # the fault's line in the site's file
            line = np.cumsum(where[t] == site) + 1  # header is line 1
            here = (faults["table"] == t).to_numpy()
            faults.loc[here, "source_row"] = line[faults.loc[here, "source_row"].to_numpy() - 2]
        out[site] = SyntheticExtract(**parts, faults=faults.reset_index(drop=True))
    return out


def write_extract(extract: SyntheticExtract, out_dir: str | Path) -> None:
    """Write the three CSVs and the fault list (injected_faults.csv) to `out_dir`."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name in ("patients", "sessions", "assessments"):
        log.info("writing %s/%s.csv (%d rows)", out, name, len(getattr(extract, name)))
        getattr(extract, name).to_csv(out / f"{name}.csv", index=False, lineterminator="\n")
    extract.faults.to_csv(out / "injected_faults.csv", index=False, lineterminator="\n")
