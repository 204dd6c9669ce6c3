"""The row-accounting invariant, as a property: whatever the raw rows hold, every one of them is
either in a cleaned table (by its source_row) or logged as dropped, never both, never neither."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cohort.io.cleaning import unaccounted_rows
from cohort.workflow.stages.clean import clean

JUNK = ["", " ", "NaN", "inf", "-1", "1e9", "abc", "2016-02-30", "12,5", " YES ", "ü", "1;2;x"]


def column_values(col, ids: list[str]) -> st.SearchStrategy[str]:
    """Valid values of a contract column mixed with junk."""
    if col.type == "id":
        valid = st.sampled_from([*ids, "ghost"])
    elif col.codes is not None and col.type == "category":
        valid = st.sampled_from([*col.codes, *(c.upper() for c in col.codes)])
    elif col.type == "code_list":
        valid = st.lists(st.sampled_from(list(col.codes or ("1",))), max_size=3).map(";".join)
    elif col.type in ("integer", "number"):
        low, high = col.min if col.min is not None else -5, col.max if col.max is not None else 5
        valid = st.integers(int(low), int(high)).map(str)
    elif col.type == "date":
        valid = st.dates().map(lambda d: d.isoformat())
    else:
        valid = st.text(max_size=5)
    return st.one_of(valid, st.sampled_from(JUNK))


@st.composite
def raw_extract(draw, contract):
    ids = [f"P{i}" for i in range(draw(st.integers(1, 6)))]
    raw = {}
    for name, table in contract.tables.items():
        n = draw(st.integers(0, 12))
        rows = [
            {c.name: draw(column_values(c, ids)) for c in table.columns.values()} for _ in range(n)
        ]
        if rows and draw(st.booleans()):  # exact duplicates
            rows += draw(st.lists(st.sampled_from(rows), max_size=3))
        df = pd.DataFrame(rows, columns=list(table.columns)).astype(str)
        df.insert(0, "source_row", np.arange(len(df), dtype=np.int64) + 2)
        raw[name] = df
    return raw


def test_row_accounting_invariant(contract, config):
    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(raw=raw_extract(contract))
    def check(raw):
        cleaned = clean(raw, contract, config)
        assert unaccounted_rows(raw, cleaned) == {}
        for name, df in cleaned.tables.items():
            assert df["source_row"].is_unique, name

    check()


def test_imported_modules_follows_imports_to_the_end(tmp_path):
    """The code input of a rule: a script's package imports, theirs (inside functions too), the
    __init__ of every package on the way; not a module nobody imports, not other packages."""
    from cohort.workflow.provenance import imported_modules

    package = tmp_path / "cohort"
    (package / "stages").mkdir(parents=True)
    files = {
        "__init__.py": "",
        "stages/__init__.py": "",
        "stages/models.py": "import numpy\nfrom cohort.models import fit\n",
        "models.py": "def fit():\n    from cohort import regression\n",
        "regression.py": "import cohort.errors\n",
        "errors.py": "",
        "figures.py": "from cohort.tables import fmt\n",
        "tables.py": "",
    }
    for name, text in files.items():
        (package / name).write_text(text)
    script = tmp_path / "predictors.py"
    script.write_text("from cohort.stages.models import predictors_stage\n")
    found = {p.relative_to(package).as_posix() for p in imported_modules(script, package)}
    assert found == {
        "__init__.py",
        "stages/__init__.py",
        "stages/models.py",
        "models.py",
        "regression.py",
        "errors.py",
    }
    # The parse of each file is cached per version: an edit that adds an import is seen.
    (package / "errors.py").write_text("from cohort.tables import fmt  # an edit\n")
    again = {p.relative_to(package).as_posix() for p in imported_modules(script, package)}
    assert again == found | {"tables.py"}
