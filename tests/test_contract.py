"""The data contract is one declaration: the dictionary, validator and generator all follow it."""

from __future__ import annotations

from cohort.io.contract import data_dictionary_markdown
from cohort.io.synthetic import synthesize

from .conftest import ROOT


def test_committed_data_dictionary_is_generated_from_contract(contract):
    expected = data_dictionary_markdown(contract, "config/contract.yaml")
    assert (ROOT / "data/raw/README.md").read_text(encoding="utf-8") == expected


def test_dictionary_lists_every_column_with_its_codes(contract):
    text = data_dictionary_markdown(contract, "config/contract.yaml")
    for table in contract.tables.values():
        for column in table.columns.values():
            assert f"| `{column.name}` | {column.type} |" in text
    assert "`start`, `discharge`, `followup_1y`" in text  # codes resolved from the config
    assert "`1`, `2`, `3`" in text  # intervention codes from the codebook


def test_generator_writes_exactly_the_contract_columns(contract, codebook):
    extract = synthesize(20, 5, contract, codebook, fault_rate=0)
    for name in ("patients", "sessions", "assessments"):
        assert list(getattr(extract, name).columns) == list(contract.table(name).columns), name
