"""The release request (results/results.json) read by ACRO's own loader, as SACRO-Viewer reads
it: ACRO 1.0.2's record module, copied into tests/fixtures/acro_1_0_2 with its source and
licence (acro pins a pandas the lock does not allow)."""

from __future__ import annotations

import importlib
import json
import shutil
import sys
from pathlib import Path

import pandas as pd
import pytest

from cohort.disclosure.settings import DOMINATED, SECONDARY, SMALL_GROUP

ROOT = Path(__file__).resolve().parents[1]
ACRO = Path(__file__).parent / "fixtures" / "acro_1_0_2"
RESULTS = ROOT / "results"


@pytest.fixture(scope="module")
def acro_record():
    sys.path.insert(0, str(ACRO))
    try:
        record = importlib.import_module("acro.record")
        yield record
    finally:
        sys.path.remove(str(ACRO))
        for name in [m for m in sys.modules if m == "acro" or m.startswith("acro.")]:
            del sys.modules[name]


def test_acro_loads_the_committed_release_request_with_every_published_table(acro_record):
    request = json.loads((RESULTS / "results.json").read_text())
    records = acro_record.load_records(str(RESULTS))
    assert set(records.results) == set(request["results"])
    published = {p.relative_to(RESULTS).as_posix() for p in (RESULTS / "tables").glob("*.csv")}
    names = {f["name"] for rec in request["results"].values() for f in rec["files"]}
    assert published - names == {"tables/baseline_vs_paper.csv"}  # rendered from baseline
    assert names <= published
    # every published table loaded as a DataFrame by acro
    assert all(isinstance(r.output[0], pd.DataFrame) for r in records.results.values())
    for uid, record in records.results.items():
        assert record.status in {"pass", "fail", "review"}
        assert "/" not in uid  # acro writes <uid>_<i>.csv when it finalises
        table = pd.read_csv(RESULTS / request["results"][uid]["files"][0]["name"], comment="#")
        assert record.output[0].shape[1] == table.shape[1]
        markers = (
            table.astype(str).isin([SECONDARY, SMALL_GROUP, DOMINATED]).to_numpy().any()
            or table.astype(str).apply(lambda c: c.str.startswith("<")).to_numpy().any()
        )
        assert (record.status == "review") == bool(markers), uid


def test_acro_writes_the_request_again_and_reads_what_it_wrote(acro_record, tmp_path):
    """A checker's round trip: ACRO finalises the records it loaded into another folder (copying
    each output), and loads that folder again with the same statuses and checks."""
    folder = tmp_path / "request"
    shutil.copytree(RESULTS / "tables", folder / "tables")
    shutil.copy(RESULTS / "results.json", folder / "results.json")
    records = acro_record.load_records(str(folder))
    records.finalise_json(str(tmp_path / "checked"))
    again = acro_record.load_records(str(tmp_path / "checked"))
    assert {k: r.status for k, r in again.results.items()} == {
        k: r.status for k, r in records.results.items()
    }
    assert {k: r.sdc for k, r in again.results.items()} == {
        k: r.sdc for k, r in records.results.items()
    }
