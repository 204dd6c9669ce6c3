"""Pooling several sites (cohort.analysis.pooling, cohort.models.meta_analysis): the meta-analysis against R's
metafor, the pooled counts and means against the single-file analysis of the same patients,
the refusal of bundles that do not agree, and disclosure control across sites."""

from __future__ import annotations

import copy
import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cohort.analysis.outcomes import outcome_levels
from cohort.analysis.pooling import (
    BETWEEN_ESTIMAND,
    BREAKDOWN,
    HIDDEN_AT_SITE,
    MODEL_ESTIMAND,
    _model_records,
    _sum_of_binomials,
    casemix_comparison,
    check_compatible,
    compatibility,
    pooled_aggregates,
    pooled_responders,
    site_aggregates,
    site_bundle,
    site_comparison,
    site_estimates,
)
from cohort.analysis.responders import classify_all, responder_rates
from cohort.core.settings import Analysis
from cohort.io.outputs import read_csv
from cohort.io.reading import read_extract
from cohort.io.synthetic import site_sizes, split_by_site, synthesize
from cohort.models.meta_analysis import meta_analysis
from cohort.workflow.stages.pooling import pool_stage, pooling_settings

from .conftest import ROOT, analysis_set, run_cli, run_snakemake, workflow_copy

FIXTURES = Path(__file__).parent / "fixtures"
SUBSETS = {"bcg": list(range(13)), "bcg_first3": [0, 1, 2], "bcg_four": [0, 1, 4, 9]}


@pytest.mark.parametrize("name", list(SUBSETS))
def test_meta_analysis_agrees_with_metafor(name):
    """metafor 3.8.1, rma(method = "REML", test = "knha") and rma(method = "FE") on its BCG
    trials (make_meta_reference.R, threshold 1e-12): every statistic to 1e-9. bcg_first3 has
    tau² = 0 on the boundary."""
    reference = pd.read_csv(FIXTURES / "meta_reference.csv", skipinitialspace=True)
    reference = reference[reference["set"] == name].iloc[0]
    data = pd.read_csv(FIXTURES / "meta_bcg.csv", skipinitialspace=True).iloc[SUBSETS[name]]
    ours = dataclasses.asdict(meta_analysis(data["yi"].to_numpy(), data["vi"].to_numpy()))
    for key, value in ours.items():
        assert value == pytest.approx(float(reference[key]), abs=1e-9), key


def test_meta_analysis_of_identical_sites_has_no_heterogeneity():
    found = meta_analysis(np.array([1.0, 1.0, 1.0]), np.array([0.1, 0.2, 0.3]))
    assert (found.tau2, found.q, found.i2) == (0.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="two or more"):
        meta_analysis(np.array([1.0]), np.array([0.1]))


@pytest.fixture(scope="module")
def three_clinics(contract, config, codebook):
    """The default study's synthetic extract's analysis set split into three clinics of 50, 30 and 20%, each
    bundled (unprotected: the exactness of pooling is the point here), and the whole."""
    raw = read_extract(ROOT / "data/raw/synthetic", contract)
    analysis = analysis_set(raw, contract, config, codebook).reset_index(drop=True)
    settings = Analysis.from_config(config)
    occasions = settings.occasion_names
    cut = [0, int(0.5 * len(analysis)), int(0.8 * len(analysis)), len(analysis)]
    shared = compatibility("contract", occasions, config["outcomes"], settings.could_not_improve)

    def bundle(site: str, patients: pd.DataFrame) -> dict:
        classified = classify_all(patients, settings.outcomes, occasions)
        rates = responder_rates(classified, pd.DataFrame(), settings.could_not_improve, len(patients), 0.95)  # fmt: skip
        table = site_aggregates(patients, settings.outcomes, occasions)
        return json.loads(json.dumps(site_bundle(site, shared, "x", table.astype(object), rates), default=str))  # fmt: skip

    sites = [bundle(name, analysis.iloc[a:b]) for name, a, b in zip("ABC", cut, cut[1:], strict=False)]  # fmt: skip
    return sites, analysis, settings


def test_three_clinics_pool_to_the_single_file_counts_and_means(three_clinics):
    sites, analysis, settings = three_clinics
    occasions = settings.occasion_names
    pooled = pooled_aggregates(sites).set_index(["section", "outcome", "occasion"])
    levels = outcome_levels(analysis, settings.outcomes, occasions, "type7")
    for _, row in levels.iterrows():
        ours = pooled.loc[("level", row["outcome"], row["occasion"])]
        assert ours["n"] == row["n"] and ours["N"] == len(analysis)
        assert ours["mean"] == pytest.approx(row["mean"], rel=1e-12)
        assert ours["sd"] == pytest.approx(row["sd"], rel=1e-10)
    whole = site_aggregates(analysis, settings.outcomes, occasions)
    for _, row in whole[whole["section"] == "change"].iterrows():
        ours = pooled.loc[("change", row["outcome"], row["occasion"])]
        assert ours["n"] == row["n"]
        assert ours["mean"] == pytest.approx(row["sum"] / row["n"], rel=1e-12)
    classified = classify_all(analysis, settings.outcomes, occasions)
    single = responder_rates(classified, pd.DataFrame(), settings.could_not_improve, len(analysis), 0.95)  # fmt: skip
    single = single[single["denominator"] == "available cases"].set_index(["outcome", "occasion"])
    pooled_rates = pooled_responders(sites, 0.95).set_index(["outcome", "occasion"])
    for key, row in single.iterrows():
        for column in ("responders", "non_responders", "could_not_improve", "missing", "n", "N"):
            assert pooled_rates.loc[key, column] == row[column], (key, column)
        assert pooled_rates.loc[key, "ci_low_pct"] == pytest.approx(row["ci_low_pct"])


def test_a_bundle_with_another_mcid_rule_is_refused_naming_the_key(three_clinics):
    sites = copy.deepcopy(three_clinics[0])
    sites[2]["compatibility"]["outcomes"]["pain"]["mcid"]["absolute"] = 3
    with pytest.raises(ValueError, match=r"site C differs from site A in outcomes\.pain\.mcid\.absolute: 3 vs 2"):  # fmt: skip
        check_compatible(sites)
    with pytest.raises(ValueError, match="same site"):
        check_compatible([sites[0], sites[0]])


def test_a_cell_hidden_at_one_site_is_hidden_in_the_pool(three_clinics):
    """Every published pooled number is computed from published site numbers only: where one
    site hides a count (or a sum), the pooled cell is hidden too and names the site, so that
    no hidden site cell follows from the pooled tables and the other sites' bundles."""
    sites = copy.deepcopy(three_clinics[0])
    row = sites[1]["aggregates"][0]
    row.update({"n": "<5", "sum": "[s]", "sum_hex": "[s]", "sum_squares": "[s]", "sum_squares_hex": "[s]"})  # fmt: skip
    sites[1]["responders"][0]["missing"] = "[c]"
    aggregates = pooled_aggregates(sites)
    first = aggregates.iloc[0]
    assert first["n"] == first["mean"] == HIDDEN_AT_SITE and "site B" in first["method"]
    published = aggregates.iloc[1:]
    assert (published["n"] != HIDDEN_AT_SITE).all()
    rates = pooled_responders(sites, 0.95)
    assert rates["missing"].iat[0] == HIDDEN_AT_SITE and "site B" in rates["method"].iat[0]
    for column in ("responders", "n"):  # the rest: sums of the sites' published counts
        assert rates[column].iat[0] == sum(int(s["responders"][0][column]) for s in sites)


def test_committed_bundle_hides_what_the_published_tables_hide():
    """results/site_bundle.json carries the published cells of site_aggregates.csv and
    responders.csv, markers and all, and nothing else of the patients."""
    bundle = json.loads((ROOT / "results" / "site_bundle.json").read_text())
    table = read_csv(ROOT / "results" / "tables" / "site_aggregates.csv")
    for record, (_, row) in zip(bundle["aggregates"], table.iterrows(), strict=True):
        for column in ("n", "sum_hex", "sum_squares_hex"):
            assert str(record[column]) == str(row[column])
    assert not any(k.startswith("dominance") for r in bundle["aggregates"] for k in r)
    assert bundle["compatibility"]["outcomes"]["pain"]["mcid"]["absolute"] == 2


def test_pool_command_on_two_sites(tmp_path):
    """`python -m cohort pool`: the committed bundle as two sites of the same patients pools to
    twice its counts, and the tables and figures are written."""
    bundle = json.loads((ROOT / "results" / "site_bundle.json").read_text())
    paths = []
    for site in ("north", "south"):
        paths.append(tmp_path / f"{site}.json")
        paths[-1].write_text(json.dumps({**bundle, "site": site}))
    done = run_cli("pool", *map(str, paths), "--out", str(tmp_path / "pooled"))
    assert done.returncode == 0, done.stderr
    rates = read_csv(tmp_path / "pooled" / "tables" / "pooled_responders.csv")
    one = next(r for r in bundle["responders"] if r["outcome"] == "pain" and r["occasion"] == "discharge")  # fmt: skip
    row = rates[(rates["outcome"] == "pain") & (rates["occasion"] == "discharge")].iloc[0]
    assert int(row["responders"]) == 2 * int(one["responders"])
    meta = read_csv(tmp_path / "pooled" / "tables" / "meta_analysis.csv")
    assert (meta.loc[meta["k"] == 2, "tau2"] == 0).all()  # identical sites: no heterogeneity
    model = meta[(meta["estimand"] == MODEL_ESTIMAND) & (meta["outcome"] == "pain")]
    first = next(m for m in bundle["models"] if m["outcome"] == "pain")
    assert model["k"].tolist() == [2, 2]
    assert model["fe_estimate"].iat[0] == pytest.approx(first["estimate"])
    assert model["fe_se"].iat[0] == pytest.approx(first["se"] / math.sqrt(2))
    # the change between follow-ups: b - a with variance se_a² + se_b² - 2 cov (lmm.csv's row)
    a, b = (m for m in bundle["models"] if m["outcome"] == "pain")
    between = meta[(meta["estimand"] == BETWEEN_ESTIMAND) & (meta["outcome"] == "pain")].iloc[0]
    assert between["occasion"] == f"{a['occasion']} to {b['occasion']}" and between["k"] == 2
    assert between["fe_estimate"] == pytest.approx(b["estimate"] - a["estimate"], rel=1e-5)
    variance = a["se"] ** 2 + b["se"] ** 2 - 2 * a["covariance"][b["occasion"]]
    assert a["covariance"][b["occasion"]] == b["covariance"][a["occasion"]] > 0
    # to the CSV's 6 significant digits
    assert between["fe_se"] == pytest.approx(math.sqrt(variance / 2), rel=1e-5)
    assert (tmp_path / "pooled" / "figures" / "forest.png").is_file()
    assert (tmp_path / "pooled" / "figures" / "funnel.png").is_file()
    wrong = dict(bundle, site="east")
    wrong["compatibility"] = copy.deepcopy(bundle["compatibility"])
    wrong["compatibility"]["occasions"] = ["start", "discharge"]
    (tmp_path / "east.json").write_text(json.dumps(wrong))
    refused = run_cli("pool", str(paths[0]), str(tmp_path / "east.json"), "--out", str(tmp_path / "x"))  # fmt: skip
    assert refused.returncode == 2 and "differs from site north in occasions" in refused.stderr
    assert math.isfinite(float(row["pct"]))


def test_mixed_models_of_different_terms_are_not_pooled():
    """Adjusted estimates of different models are different estimands: left out, with why."""
    bundle = json.loads((ROOT / "results" / "site_bundle.json").read_text())
    other = copy.deepcopy(bundle)
    other["site"] = "other"
    for m in other["models"]:
        m["terms"] = [t for t in m["terms"] if t != "age"]
    estimates = site_estimates([{**bundle, "site": "one"}, other])
    model = estimates[estimates["estimand"] == MODEL_ESTIMAND]
    assert len(model) == 2 * len(bundle["models"])
    assert model["estimate"].isna().all()
    assert (model["reason"] == "the sites' models have different terms").all()


def test_a_damaged_bundle_is_refused_naming_the_file(tmp_path):
    good = tmp_path / "good.json"
    good.write_text((ROOT / "results" / "site_bundle.json").read_text())
    (tmp_path / "cut.json").write_text('{"site": "x", "aggre')
    (tmp_path / "other.json").write_text('{"site": "x"}')
    for name, message in (
        ("cut.json", "not a readable site bundle"),
        ("other.json", "not a site bundle: no format"),
    ):
        done = run_cli("pool", str(good), str(tmp_path / name), "--out", str(tmp_path / "out"))
        assert done.returncode == 2 and f"{tmp_path / name}: {message}" in done.stderr
        assert "Traceback" not in done.stderr


# --- The worked example: three clinics, each run as a site (make clinics) ----------------------
CLINICS = ("clinic_a", "clinic_b", "clinic_c")
CLINIC_BUNDLES = [FIXTURES / "clinics" / f"{site}.site_bundle.json" for site in CLINICS]


def test_the_generator_splits_the_extract_into_sites_losing_no_row(contract, codebook):
    """synthesize --sites: the default extract's patients at three sites of 50/30/20%, each
    patient (with all its rows, faulty ones too) at one site, the faults at their site's line."""
    whole = synthesize(274, 20211022, contract, codebook)
    parts = split_by_site(whole, {"a": 0.5, "b": 0.3, "c": 0.2}, 20211022)
    for table in ("patients", "sessions", "assessments", "faults"):
        assert sum(len(getattr(p, table)) for p in parts.values()) == len(getattr(whole, table))

    def ids_of(extract) -> set:
        return {*extract.patients["patient_id"], *extract.sessions["patient_id"], *extract.assessments["patient_id"]}  # fmt: skip

    ids = [ids_of(p) for p in parts.values()]
    assert not (ids[0] & ids[1]) and not (ids[0] & ids[2]) and not (ids[1] & ids[2])
    everyone = ids_of(whole)
    assert [len(i) for i in ids] == list(site_sizes(len(everyone), {"a": 0.5, "b": 0.3, "c": 0.2}).values())  # fmt: skip
    for part in parts.values():
        for fault in part.faults.itertuples():
            assert getattr(part, fault.table)["patient_id"].iat[fault.source_row - 2] == fault.patient_id  # fmt: skip
    merged = pd.concat([p.assessments for p in parts.values()]).sort_index(kind="stable")
    assert sorted(map(tuple, merged.to_numpy().tolist())) == sorted(map(tuple, whole.assessments.to_numpy().tolist()))  # fmt: skip
    assert site_sizes(10, {"x": 1, "y": 1, "z": 1}) == {"x": 4, "y": 3, "z": 3}
    with pytest.raises(ValueError, match="positive"):
        site_sizes(10, {"x": 0})


def test_the_three_clinics_pool_to_the_default_study_where_every_site_publishes():
    """The worked example's bundles (make clinics: three pipeline runs, each under its own
    disclosure control) pool to the counts of the single-file run (results/site_bundle.json)
    exactly, and to its means to rounding, wherever all three sites published the cell; the
    rest is [site]. The fixtures fail this test when the analysis changes without `make
    clinics` (their compatibility or their counts no longer match the committed results)."""
    bundles = [json.loads(p.read_text()) for p in CLINIC_BUNDLES]
    whole = json.loads((ROOT / "results" / "site_bundle.json").read_text())
    assert [b["site"] for b in bundles] == list(CLINICS)
    assert all(b["compatibility"] == whole["compatibility"] for b in bundles), "run make clinics"
    check_compatible(bundles)
    pooled = pooled_aggregates(bundles).set_index(["section", "outcome", "occasion"])
    compared = hidden = 0
    for r in whole["aggregates"]:
        ours = pooled.loc[(r["section"], r["outcome"], r["occasion"])]
        assert ours["N"] == r["N"] == 274
        if ours["n"] == HIDDEN_AT_SITE or not str(r["n"]).isdigit():
            hidden += ours["n"] == HIDDEN_AT_SITE
            continue
        assert ours["n"] == int(r["n"]), (r["section"], r["outcome"], r["occasion"])
        assert ours["mean"] == pytest.approx(float.fromhex(r["sum_hex"]) / int(r["n"]), rel=1e-12)
        compared += 1
    assert compared >= 10 and hidden < compared
    rates = pooled_responders(bundles, 0.95).set_index(["outcome", "occasion"])
    counted = 0
    for r in whole["responders"]:
        for column in BREAKDOWN:
            ours = rates.loc[(r["outcome"], r["occasion"]), column]
            if ours != HIDDEN_AT_SITE and str(r[column]).isdigit():
                assert ours == int(r[column]), (r["outcome"], r["occasion"], column)
                counted += 1
    assert counted >= 20


def test_the_sum_of_binomials_is_exact():
    """The null distribution of a case-mix adjusted count: against full enumeration of two
    small binomials, and one level's is the binomial itself."""
    from scipy import stats

    pmf = _sum_of_binomials(np.array([3, 2]), np.array([0.2, 0.7]))
    a, b = stats.binom.pmf(np.arange(4), 3, 0.2), stats.binom.pmf(np.arange(3), 2, 0.7)
    expected = [sum(a[i] * b[k - i] for i in range(4) if 0 <= k - i <= 2) for k in range(6)]
    assert pmf == pytest.approx(expected, abs=1e-15)
    one = _sum_of_binomials(np.array([40]), np.array([0.3]))
    assert one == pytest.approx(stats.binom.pmf(np.arange(41), 40, 0.3), abs=1e-14)
    big = _sum_of_binomials(np.array([3000, 2500]), np.array([0.4, 0.6]))  # the FFT path
    assert big.sum() == pytest.approx(1) and (big @ np.arange(len(big))) == pytest.approx(2700)


def _casemix_bundle(site: str, levels: dict[str, tuple[int, int]]) -> dict:
    """A minimal bundle: one outcome and occasion, the breakdown by sex levels (r, n)."""
    r, n = sum(v[0] for v in levels.values()), sum(v[1] for v in levels.values())
    return {"site": site, "responders": [{"outcome": "pain", "occasion": "discharge", "rule": "x",
            "responders": r, "non_responders": n - r, "could_not_improve": 0, "missing": 0, "n": n, "N": n}],
            "subgroups": [{"subgroup": "sex", "level": lv, "outcome": "pain", "occasion": "discharge",
                           "responders": k, "n": m} for lv, (k, m) in levels.items()]}  # fmt: skip


def test_case_mix_adjustment_by_indirect_standardisation():
    """A site that treats mostly the level that responds less is expected to have fewer
    responders: E = sum of its n per level times the pooled level rate; one level gives the
    unadjusted limits; a hidden level's count leaves the comparison unadjusted, saying why."""
    sites = [_casemix_bundle("A", {"F": (10, 20), "M": (60, 80)}),
             _casemix_bundle("B", {"F": (40, 80), "M": (15, 20)})]  # fmt: skip
    pooled = pooled_responders(sites, 0.95)
    adjusted = casemix_comparison(sites, pooled, "sex").set_index("site")
    p_f, p_m = 50 / 100, 75 / 100
    assert adjusted.loc["A", "expected"] == pytest.approx(20 * p_f + 80 * p_m)
    assert adjusted.loc["B", "expected"] == pytest.approx(80 * p_f + 20 * p_m)
    assert adjusted.loc["A", "adjusted_pct"] == pytest.approx(
        62.5 * 70 / 70
    )  # O = E: the pooled rate
    unadjusted = site_comparison(sites, pooled).set_index("site")
    assert unadjusted.loc["A", "pct"] == pytest.approx(70) and unadjusted.loc[
        "B", "pct"
    ] == pytest.approx(55)
    single = [_casemix_bundle(s["site"], {"F": (s["responders"][0]["responders"], s["responders"][0]["n"])}) for s in sites]  # fmt: skip
    one = casemix_comparison(single, pooled, "sex").set_index("site")
    for site in ("A", "B"):
        for column in (
            "limit95_low_pct",
            "limit95_high_pct",
            "limit998_low_pct",
            "limit998_high_pct",
        ):
            assert one.loc[site, column] == pytest.approx(unadjusted.loc[site, column]), (
                site,
                column,
            )
        assert one.loc[site, "position"] == unadjusted.loc[site, "position"]
    sites[1]["subgroups"][1]["responders"] = "<5"
    refused = casemix_comparison(sites, pooled, "sex")
    assert refused["position"].str.contains("hidden at site B").all()
    assert casemix_comparison(sites, pooled, "age_group")["position"].str.contains("no breakdown by age_group").all()  # fmt: skip


def test_a_pooling_file_is_checked_naming_the_key():
    good = {"pooling": {"name": "x", "sites": {"a": "a.json", "b": "b.json"}, "results": "out"}}
    assert pooling_settings(good, "f.yaml").level == 0.95
    for change, key in (({"sites": {"a": "a.json"}}, "pooling.sites"), ({"level": 2.0}, "pooling.level"),
                        ({"colour": 1}, "pooling.colour"), ({"case_mix": "sex"}, "pooling.case_mix")):  # fmt: skip
        with pytest.raises(ValueError, match=f"f.yaml: {key}"):
            pooling_settings({"pooling": {**good["pooling"], **change}}, "f.yaml")
    with pytest.raises(ValueError, match="no `pooling` section"):
        pooling_settings({}, "f.yaml")


@pytest.mark.workflow
def test_the_pooling_workflow_on_the_three_clinics(tmp_path):
    """snakemake -s pool.smk with the worked example's pooling file: every output with its log
    and the record of the bundles pooled; a bundle of another site under a site's name is
    refused naming the file."""
    work = workflow_copy(tmp_path / "wf")
    for site, path in zip(CLINICS, CLINIC_BUNDLES, strict=True):
        (work / "results" / site).mkdir(parents=True)
        (work / "results" / site / "site_bundle.json").write_text(path.read_text())
    done = run_snakemake(work, "-s", "pool.smk", "--configfile", "config/studies/clinics_pooled.yaml")  # fmt: skip
    assert done.returncode == 0, done.stderr
    out = work / "results" / "clinics_pooled"
    record = json.loads((out / "pooling.json").read_text())
    assert [s["site"] for s in record["sites"]] == list(CLINICS)
    for name in record["outputs"]:
        assert (out / name).is_file(), name
    adjusted = read_csv(out / "tables" / "site_comparison_adjusted.csv")
    assert set(adjusted["adjusted_by"]) == {"sex"} and adjusted["position"].notna().all()
    assert (work / "logs" / "clinics_pooled" / "pool.log").is_file()
    (work / "results" / "clinic_c" / "site_bundle.json").write_text(CLINIC_BUNDLES[1].read_text())
    refused = run_snakemake(work, "-s", "pool.smk", "--configfile", "config/studies/clinics_pooled.yaml", "--forcerun", "pool")  # fmt: skip
    assert refused.returncode != 0 and "the bundle of site 'clinic_b', named 'clinic_c'" in refused.stderr + (work / "logs/clinics_pooled/pool.log").read_text()  # fmt: skip


@pytest.mark.workflow
def test_the_attacker_with_the_pooled_tables_and_the_other_bundles_recovers_no_site_cell(default_run, tmp_path, config):  # fmt: skip
    """Across bundles: the default study's run as one site, pooled with two clinics' bundles;
    the attacker who solves every relation of that site's published tables, and besides each
    published pooled count = that site's cell + the other sites' published cells, recovers no
    hidden cell of the site. Without the pooling's hiding ([site]) it would: the control
    publishes one pooled n over a hidden site cell and the attacker pins that cell."""
    from .disclosure_attack import add_pooled_relations, build_attack

    min_cell = config["disclosure"]["min_cell"]
    mcid = {name: spec["mcid"] for name, spec in config["outcomes"].items()}
    site = default_run / "results" / "site_bundle.json"
    chosen = [CLINIC_BUNDLES[0], CLINIC_BUNDLES[2]]  # they publish a cell the site hides
    others = [json.loads(p.read_text()) for p in chosen]
    pool_stage([str(site), *map(str, chosen)], str(tmp_path / "pooled"))

    def problems() -> list[str]:
        at = build_attack(default_run / "results", min_cell, mcid)
        assert add_pooled_relations(at, tmp_path / "pooled", others) > 50
        return [f"{ref}: {low:g}-{high:g}" for ref, low, high in at.ranges(min_cell)
                if high - low < 0.5 or high < min_cell - 1e-6]  # fmt: skip

    assert problems() == []
    table = tmp_path / "pooled" / "tables" / "pooled_outcomes.csv"
    pooled = read_csv(table)

    def others_n(section: str, outcome: str, occasion: str) -> list[str]:
        return [str(next(r["n"] for r in b["aggregates"] if (r["section"], r["outcome"], r["occasion"]) == (section, outcome, occasion))) for b in others]  # fmt: skip

    keys = [tuple(k) for k in pooled.loc[pooled["n"] == HIDDEN_AT_SITE, ["section", "outcome", "occasion"]].to_numpy()]  # fmt: skip
    key = next(
        k for k in keys if all(n.isdigit() for n in others_n(*k))
    )  # hidden at this site only
    true = read_csv(default_run / "data/processed/tables/site_aggregates.csv")
    columns = ["section", "outcome", "occasion"]
    true_n = true.loc[(true[columns] == pd.Series(key, index=columns)).all(axis=1), "n"].iat[0]
    row = pooled.index[(pooled[columns] == pd.Series(key, index=columns)).all(axis=1)][0]
    pooled.loc[row, "n"] = str(int(true_n) + sum(map(int, others_n(*key))))
    pooled.to_csv(table, index=False)
    assert any("site_aggregates" in p for p in problems())


def test_a_site_whose_mixed_models_all_failed_bundles_no_model():
    """A small site's lmm.csv can hold only failed models (no estimate column): the bundle
    then carries no model estimates instead of stopping rule site_bundle."""
    failed = pd.DataFrame({"outcome": ["pain"], "term": ["(model failed)"], "converged": [False]})
    assert _model_records(failed, ["discharge", "followup_1y"]) == []


def test_a_contract_copy_that_differs_only_in_comments_is_the_same_contract(tmp_path):
    """Each site keeps its own copy of the contract: comments and layout do not make it another
    contract (the bundles still pool); a changed range does."""
    from cohort.analysis.pooling import contract_sha256
    from cohort.core.config import read_yaml

    original = (ROOT / "config/contract.yaml").read_text()
    commented = tmp_path / "commented.yaml"
    commented.write_text("# site north's copy, annotated\n" + original.replace("\n", "  \n", 3))
    assert contract_sha256(read_yaml(commented)) == contract_sha256(read_yaml(ROOT / "config/contract.yaml"))  # fmt: skip
    contract = read_yaml(ROOT / "config/contract.yaml")
    changed = copy.deepcopy(contract)
    column = changed["tables"]["assessments"]["columns"]["nprs"]
    column["max"] = column["max"] + 1
    assert contract_sha256(changed) != contract_sha256(contract)


def test_an_mcid_rule_worded_differently_is_the_same_rule():
    """The MCID's reference and assumption flag say where a rule comes from; two sites that
    apply the same threshold pool, a site with a strict ('more than') rule does not."""
    from cohort.analysis.pooling import compatibility

    def pain(**mcid):
        rule = {"absolute": 2, "percent": None, "combine": "either", **mcid}
        return {"pain": {"source": {"column": "nprs"}, "range": [0, 10], "better": "lower", "mcid": rule}}  # fmt: skip

    one = compatibility("c", ["start", "end"], pain(reference="Farrar 2001"), "non_responder")
    other = compatibility("c", ["start", "end"], pain(reference="IMMPACT", assumption=True), "non_responder")  # fmt: skip
    strict = compatibility("c", ["start", "end"], pain(strict=True), "non_responder")
    assert one == other
    assert one["outcomes"]["pain"]["mcid"] != strict["outcomes"]["pain"]["mcid"]


def test_an_mcid_rule_with_its_defaults_written_out_is_the_same_rule():
    from cohort.analysis.pooling import compatibility

    spec = {"source": {"column": "nprs"}, "range": [0, 10], "better": "lower"}
    omitted = compatibility("c", ["a", "b"], {"pain": {**spec, "mcid": {"absolute": 2}}}, "x")
    written = compatibility(
        "c", ["a", "b"],
        {"pain": {**spec, "mcid": {"absolute": 2, "percent": None, "combine": "either", "strict": False}}},
        "x",
    )  # fmt: skip
    assert omitted == written
