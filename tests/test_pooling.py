"""Pooling several sites (cohort.pooling, cohort.meta_analysis): the meta-analysis against R's
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

from cohort.cleaning import read_extract
from cohort.meta_analysis import meta_analysis
from cohort.outcomes import outcome_levels
from cohort.outputs import read_csv
from cohort.pooling import (
    HIDDEN_AT_SITE,
    MODEL_ESTIMAND,
    check_compatible,
    compatibility,
    pooled_aggregates,
    pooled_responders,
    site_aggregates,
    site_bundle,
    site_estimates,
)
from cohort.responders import classify_all, responder_rates
from cohort.settings import Analysis

from .conftest import ROOT, analysis_set, run_cli

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
    for name, message in (("cut.json", "not a readable site bundle"), ("other.json", "not a site bundle: no format")):
        done = run_cli("pool", str(good), str(tmp_path / name), "--out", str(tmp_path / "out"))
        assert done.returncode == 2 and f"{tmp_path / name}: {message}" in done.stderr
        assert "Traceback" not in done.stderr
