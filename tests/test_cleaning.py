"""Cleaning: each fault class alone is found in the log and absent from the output; hand-built
cases for the merge, order and file-level rules."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cohort.analysis.derivations import (
    intervention_flags,
    outcome_scores,
    patient_flow,
    patient_table,
)
from cohort.core.errors import ContractError
from cohort.core.settings import Analysis
from cohort.io.cleaning import unaccounted_rows
from cohort.io.outputs import read_parquet
from cohort.io.reading import read_extract, read_raw_table
from cohort.io.synthetic import synthesize, write_extract
from cohort.io.synthetic_faults import FAULT_CLASSES
from cohort.workflow.stages.clean import clean

# The cleaning rule each injected fault must be logged under.
LOGGED_AS = {
    "out_of_range": ("out_of_range", "set_missing"),
    "unparseable_date": ("unparseable_date", "set_missing"),
    "exact_duplicate": ("exact_duplicate", "dropped_row"),
    "conflicting_duplicate": ("conflicting_duplicate", "dropped_row"),
    "unknown_patient": ("unknown_patient", "dropped_row"),
    "unknown_code": ("unknown_code", "dropped_code"),
    "decimal_comma": ("decimal_comma", "normalized"),
    "whitespace_or_case": ("whitespace_or_case", "normalized"),
    "date_order": ("date_order", "set_missing"),
}


def clean_folder(folder, contract, config):
    raw = read_extract(folder, contract)
    return raw, clean(raw, contract, config)


@pytest.mark.parametrize("fault", FAULT_CLASSES)
def test_each_fault_alone_is_logged_and_removed(tmp_path, contract, codebook, config, fault):
    extract = synthesize(80, 3, contract, codebook, fault_rate=0.05, fault_classes=(fault,))
    write_extract(extract, tmp_path)
    injected = extract.faults
    assert len(injected) > 0 and set(injected["fault"]) == {fault}
    raw, cleaned = clean_folder(tmp_path, contract, config)
    assert unaccounted_rows(raw, cleaned) == {}
    log = cleaned.log
    if fault == "not_included":
        codes = list(codebook)
        typed = Analysis.from_config(config)
        a = outcome_scores(cleaned.tables["assessments"], typed.outcomes)
        s = intervention_flags(cleaned.tables["sessions"], codes)
        p = patient_table(
            cleaned.tables["patients"],
            s,
            a,
            list(typed.outcomes),
            typed.occasion_names,
            typed.derived,
            codes,
        )
        flow = patient_flow(p, typed.occasions, has_sessions=True)
        excluded = flow[flow["key"] == "not_included"]["n"].sum()
        assert excluded == len(injected)
        assert not p.loc[p["patient_id"].isin(injected["patient_id"]), "analysis_set"].any()
        assert int(p["analysis_set"].sum()) == 80
        assert log.empty  # a referred, not included patient is no data fault
        return
    rule, action = LOGGED_AS[fault]
    # Only this fault class was injected, so the log holds this rule and nothing else
    # (a whitespace-and-case fault logs its two normalisations under one rule).
    assert set(log["rule"]) == {rule}
    for _, f in injected.iterrows():
        hit = log[
            (log["table"] == f["table"])
            & (log["source_row"] == f["source_row"])
            & (log["rule"] == rule)
        ]
        assert len(hit) >= 1, f"fault not logged: {f.to_dict()}"
        assert action in set(hit["action"])
        table = cleaned.tables[f["table"]]
        if action == "dropped_row":
            assert f["source_row"] not in set(table["source_row"])
        elif action == "set_missing":
            row = table[table["source_row"] == f["source_row"]]
            if len(row):  # a merged duplicate keeps the first row's source_row
                assert pd.isna(row[f["column"]].iat[0])
        elif action == "dropped_code":
            row = table[table["source_row"] == f["source_row"]]
            bad = f["value"].split(";")[-1]
            assert bad not in row["interventions"].iat[0].split(";")
        elif action == "normalized":
            row = table[table["source_row"] == f["source_row"]]
            value = row[f["column"]].iat[0]
            if fault == "decimal_comma":
                assert value == pytest.approx(float(f["value"].replace(",", ".")))
            else:
                assert (
                    str(value) == str(value).strip()
                    and str(value) in contract.table(f["table"]).columns[f["column"]].codes
                )


def test_conflicting_duplicate_merges_and_blanks_only_disagreeing_values(
    tmp_path, contract, config, codebook
):
    extract = synthesize(10, 1, contract, codebook, fault_rate=0)
    patients = extract.patients.copy()
    dup = patients.iloc[[2]].copy()
    dup["bmi"] = "40.0"  # disagrees
    original_bmi = patients["bmi"].iat[2]
    patients.loc[2, "smoker"] = ""  # missing in the first row, present in the duplicate
    patients = pd.concat([patients.iloc[:3], dup, patients.iloc[3:]], ignore_index=True)
    write_extract(
        type(extract)(patients, extract.sessions, extract.assessments, extract.faults), tmp_path
    )
    _, cleaned = clean_folder(tmp_path, contract, config)
    out = cleaned.tables["patients"].set_index("patient_id")
    pid = patients["patient_id"].iat[2]
    assert np.isnan(out.at[pid, "bmi"])
    assert out.at[pid, "smoker"] == dup["smoker"].iat[0]  # taken from the row that has it
    assert out.at[pid, "age"] == int(patients["age"].iat[2])
    log = cleaned.log[cleaned.log["patient_id"] == pid]
    assert set(zip(log["rule"], log["action"], strict=True)) == {
        ("conflicting_duplicate", "set_missing"),
        ("conflicting_duplicate", "dropped_row"),
    }
    assert log.loc[log["action"] == "set_missing", "value"].iat[0] == " | ".join(
        sorted([original_bmi, "40.0"])
    )


def test_occasion_dated_before_an_earlier_one_loses_its_date(tmp_path, contract, config, codebook):
    extract = synthesize(5, 2, contract, codebook, fault_rate=0)
    a = extract.assessments.copy()
    pid = a["patient_id"].iat[0]
    a.loc[(a["patient_id"] == pid) & (a["occasion"] == "discharge"), "assessed_on"] = "2000-01-01"
    write_extract(type(extract)(extract.patients, extract.sessions, a, extract.faults), tmp_path)
    _, cleaned = clean_folder(tmp_path, contract, config)
    out = cleaned.tables["assessments"]
    row = out[(out["patient_id"] == pid) & (out["occasion"] == "discharge")]
    assert pd.isna(row["assessed_on"].iat[0])
    assert row["nprs"].notna().iat[0]  # the outcome values stay
    assert (cleaned.log["rule"] == "date_order").sum() == 1


def test_code_lists_are_canonical_and_flags_match(tmp_path, contract, config, codebook):
    extract = synthesize(3, 2, contract, codebook, fault_rate=0)
    s = extract.sessions.copy()
    s.loc[0, "interventions"] = " 4; 1;4 ;2"
    write_extract(type(extract)(extract.patients, s, extract.assessments, extract.faults), tmp_path)
    _, cleaned = clean_folder(tmp_path, contract, config)
    flagged = intervention_flags(cleaned.tables["sessions"], list(codebook))
    assert flagged["interventions"].iat[0] == "1;2;4"
    assert flagged.loc[0, ["intervention_1", "intervention_2", "intervention_4"]].all()
    assert not flagged.loc[0, ["intervention_3", "intervention_10"]].any()
    assert (cleaned.log["rule"] == "whitespace_or_case").sum() == 1  # leading space of the cell


def test_unknown_and_missing_optional_columns_are_noted(tmp_path, contract, config, codebook):
    extract = synthesize(5, 2, contract, codebook, fault_rate=0)
    p = extract.patients.drop(columns=["smoker"]).assign(favourite_colour="blue")
    write_extract(type(extract)(p, extract.sessions, extract.assessments, extract.faults), tmp_path)
    _, cleaned = clean_folder(tmp_path, contract, config)
    notes = cleaned.log[cleaned.log["source_row"].isna()]
    assert set(zip(notes["column"], notes["action"], strict=True)) == {
        ("favourite_colour", "column_ignored"),
        ("smoker", "column_added_missing"),
    }
    assert cleaned.tables["patients"]["smoker"].isna().all()


def test_semicolon_delimiter_and_bom_are_read(tmp_path):
    path = tmp_path / "patients.csv"
    path.write_bytes("\ufeffpatient_id;bmi\nP1;24,5\n".encode())
    df = read_raw_table(path)
    assert list(df.columns) == ["source_row", "patient_id", "bmi"]
    assert df["bmi"].iat[0] == "24,5" and df["source_row"].iat[0] == 2


PLAIN = "patient_id,age,note\nP1,34,ok\nP2,,x y \n P3 ,NA,null\n"


@pytest.mark.parametrize(
    "text, fast",
    [
        (PLAIN, True),
        (PLAIN.replace("\n", "\r\n"), True),  # Windows line ends
        (PLAIN.rstrip("\n"), True),  # no line break after the last record
        (PLAIN.replace(",", ";"), True),
        ("patient_id\nP1\nP2\n", True),  # one column
        (PLAIN + "\n", False),  # a blank line is a record (an empty row, logged)
        (PLAIN.replace("\nP2", "\n\nP2"), False),
        (PLAIN.replace("ok", '"o,k"'), False),  # quoting: pandas, with its line numbers
        (PLAIN.replace("\n", "\r"), False),  # old Mac line ends
        (PLAIN.replace("age", "note"), False),  # a repeated column name (pandas renames it)
        (PLAIN.replace("P2,,x y ", "P2,1"), False),  # a short line: pandas' treatment
    ],
)
def test_the_fast_reader_reads_what_pandas_reads_or_leaves_the_file_to_it(tmp_path, text, fast):
    """pyarrow's reader (`_read_plain_csv`) takes the plain files, with the same table as
    pandas' (values kept as text, whitespace, 'NA' and 'null' as written), and leaves every
    other file to pandas."""
    from cohort.io.reading import _read_csv_with_pandas, _read_plain_csv, _separator

    path = tmp_path / "t.csv"
    sep = _separator(text.split("\n")[0].split("\r")[0])
    got = _read_plain_csv(text, sep)
    assert (got is not None) == fast
    if fast:
        pd.testing.assert_frame_equal(got, _read_csv_with_pandas(text, sep, path, None))
        path.write_text(text, newline="")
        table = read_raw_table(path)
        assert table["source_row"].tolist() == list(range(2, 2 + len(got)))


def test_the_fast_reader_reads_a_generated_extract_as_pandas_does(tmp_path, contract, codebook):
    """The generated extract with every fault class: each plain file gives pandas' table."""
    from cohort.io.reading import _decode, _read_csv_with_pandas, _read_plain_csv, _separator

    write_extract(synthesize(300, 8, contract, codebook, fault_rate=0.05), tmp_path)
    fast = 0
    for path in sorted(tmp_path.glob("*.csv")):
        text = _decode(path.read_bytes(), path)
        sep = _separator(text.split("\n")[0])
        got = _read_plain_csv(text, sep)
        if got is not None:
            fast += 1
            pd.testing.assert_frame_equal(got, _read_csv_with_pandas(text, sep, path, None))
    assert fast >= 2  # sessions and assessments at least


def test_records_are_counted_without_reading_the_file(tmp_path):
    """count_records (the scheduler's size of a study): lines less the header, with or without
    a last line break; a workbook's rows less its header."""
    import openpyxl

    from cohort.io.reading import count_records

    (tmp_path / "a.csv").write_text("id,x\n1,2\n3,4\n")
    (tmp_path / "b.csv").write_text("id,x\n1,2\n3,4\n5,6")
    (tmp_path / "c.csv").write_text("id,x\n")
    assert [count_records(tmp_path / f) for f in ("a.csv", "b.csv", "c.csv")] == [2, 3, 0]
    book = openpyxl.Workbook()
    for row in (["id", "x"], [1, 2], [3, 4], [5, 6]):
        book.active.append(row)
    book.save(tmp_path / "d.xlsx")
    assert count_records(tmp_path / "d.xlsx") == 3


def test_missing_file_stops_naming_file(tmp_path, contract, codebook):
    write_extract(synthesize(5, 1, contract, codebook, fault_rate=0), tmp_path)
    (tmp_path / "assessments.csv").unlink()
    with pytest.raises(ContractError, match=r"assessments\.csv: required file not found"):
        read_extract(tmp_path, contract)


def test_missing_optional_file_is_allowed(tmp_path, contract, codebook):
    write_extract(synthesize(5, 1, contract, codebook, fault_rate=0), tmp_path)
    (tmp_path / "sessions.csv").unlink()
    assert set(read_extract(tmp_path, contract)) == {"patients", "assessments"}


def test_missing_column_stops_naming_file_and_column(tmp_path, contract, codebook):
    extract = synthesize(5, 1, contract, codebook, fault_rate=0)
    write_extract(
        type(extract)(
            extract.patients.drop(columns=["sex"]),
            extract.sessions,
            extract.assessments,
            extract.faults,
        ),
        tmp_path,
    )
    with pytest.raises(ContractError, match=r"patients\.csv: required column\(s\) missing: sex"):
        read_extract(tmp_path, contract)


def test_empty_file_stops(tmp_path, contract, codebook):
    write_extract(synthesize(5, 1, contract, codebook, fault_rate=0), tmp_path)
    (tmp_path / "patients.csv").write_text("")
    with pytest.raises(ContractError, match=r"patients\.csv: the file is empty"):
        read_extract(tmp_path, contract)


def test_integer_column_rejects_fractions_and_text(tmp_path, contract, config, codebook):
    extract = synthesize(5, 1, contract, codebook, fault_rate=0)
    a = extract.assessments.copy()
    a.loc[0, "nprs"] = "6.5"
    a.loc[1, "nprs"] = "inf"
    a.loc[2, "eqvas"] = "fifty"
    write_extract(type(extract)(extract.patients, extract.sessions, a, extract.faults), tmp_path)
    _, cleaned = clean_folder(tmp_path, contract, config)
    rules = cleaned.log.set_index("source_row")["rule"]
    assert (
        rules.loc[2] == "not_integer"
        and rules.loc[3] == "unparseable_number"
        and rules.loc[4] == "unparseable_number"
    )
    assert cleaned.tables["assessments"].loc[:2, ["nprs"]].iloc[:2].isna().all().all()


def test_the_row_accounting_check_finds_lost_and_double_counted_rows(
    tmp_path, contract, config, codebook
):
    """The invariant's checker itself: a kept row silently removed, and a kept row also logged as
    dropped, are both reported with their line numbers."""
    write_extract(synthesize(20, 4, contract, codebook, fault_rate=0.05), tmp_path)
    raw, cleaned = clean_folder(tmp_path, contract, config)
    assert unaccounted_rows(raw, cleaned) == {}
    sessions = cleaned.tables["sessions"]
    lost, doubled = int(sessions["source_row"].iat[0]), int(sessions["source_row"].iat[1])
    cleaned.tables["sessions"] = sessions.iloc[1:]
    extra = cleaned.log.iloc[:1].assign(table="sessions", source_row=doubled, action="dropped_row")
    broken = type(cleaned)(cleaned.tables, pd.concat([cleaned.log, extra]), cleaned.raw_rows)
    assert unaccounted_rows(raw, broken) == {"sessions": {lost, doubled}}


# --- What real extracts need: missing-value codes, sum scores, no dates ---------------------------
def small_contract(tmp_path, item_spec: str, dated: bool):
    """A two-table contract: a 3-item questionnaire and an EQ VAS, assessment dates or not."""
    from cohort.io.contract import load_contract

    date = "      assessed_on: {type: date}\n" if dated else ""
    (tmp_path / "contract.yaml").write_text(
        "tables:\n  patients:\n    key: [patient_id]\n    columns:\n"
        "      patient_id: {type: id, required: true, not_null: true}\n"
        "      included: {type: category, codes: ['yes', 'no'], required: true}\n"
        "  assessments:\n    key: [patient_id, occasion]\n    columns:\n"
        "      patient_id: {type: id, required: true, not_null: true, references: patients}\n"
        "      occasion: {type: category, codes_from: occasions, required: true}\n"
        + date
        + "".join(f"      q{i}: {item_spec}\n" for i in (1, 2, 3))
        + "      eqvas: {type: integer, min: 0, max: 100, missing_codes: [999, '*']}\n"
    )
    config = {
        "occasions": [{"name": "t0", "label": "T0"}, {"name": "t1", "label": "T1"}],
        "outcomes": {
            "function": {
                "label": "F",
                "source": {"items": ["q1", "q2", "q3"], "min_answered": 2, "score": "sum"},
                "range": [0, 12],
                "better": "lower",
                "mcid": {"absolute": 2, "percent": None, "combine": "either", "reference": "t"},
            },
            "health": {
                "label": "H",
                "source": {"column": "eqvas"},
                "range": [0, 100],
                "better": "higher",
                "mcid": {"absolute": 10, "percent": None, "combine": "either", "reference": "t"},
            },
        },
        "cleaning": {
            "date_formats": ["%Y-%m-%d"],
            "check_occasion_order": True,
            "allow_identifiers": False,
        },
        "derived": {},
    }
    return load_contract(tmp_path / "contract.yaml", config), config


def test_missing_value_codes_are_missing_and_logged_as_such(tmp_path):
    """9 in an item and 999 or * in the EQ VAS are not answers: set missing, logged as
    missing_code (not out_of_range); 9.0 matches the code 9 in a numeric column."""
    contract, config = small_contract(
        tmp_path, "{type: integer, min: 0, max: 4, missing_codes: [9]}", False
    )
    raw = {
        "patients": pd.DataFrame({"source_row": [2], "patient_id": ["A"], "included": ["yes"]}),
        "assessments": pd.DataFrame(
            {
                "source_row": [2, 3],
                "patient_id": ["A", "A"],
                "occasion": ["t0", "t1"],
                "q1": ["9", "4"],
                "q2": ["1", "9.0"],
                "q3": ["2", "4"],
                "eqvas": ["999", "*"],
            }
        ),
    }
    cleaned = clean(raw, contract, config)
    log = cleaned.log
    codes = log[log["rule"] == "missing_code"]
    assert sorted(zip(codes["column"], codes["value"], strict=True)) == [
        ("eqvas", "*"), ("eqvas", "999"), ("q1", "9"), ("q2", "9.0"),
    ]  # fmt: skip
    assert (codes["action"] == "set_missing").all()
    assert "out_of_range" not in set(log["rule"])
    a = cleaned.tables["assessments"]
    assert a["q1"].isna().iat[0] and a["eqvas"].isna().all()
    assert unaccounted_rows(raw, cleaned) == {}


def test_sum_scores_are_prorated_and_need_the_minimum_answered(tmp_path):
    """score: sum = mean of the answered items x number of items: 1 + 2 + 3 = 6; with q3
    missing, (1 + 2) / 2 x 3 = 4.5; with one item of three answered (min 2), missing."""
    typed = Analysis.from_config(small_contract(tmp_path, "{type: integer}", False)[1])
    assessments = pd.DataFrame(
        {"q1": [1, 1, 1], "q2": [2, 2, np.nan], "q3": [3, np.nan, np.nan], "eqvas": [50, 60, 70]}
    )
    scores = outcome_scores(assessments, typed.outcomes)["function"].tolist()
    assert scores[:2] == [6.0, 4.5] and np.isnan(scores[2])


def test_an_extract_without_assessment_dates_is_cleaned_with_a_note(tmp_path):
    """No assessed_on: the order of occasions cannot be checked; a note says so, no error."""
    contract, config = small_contract(tmp_path, "{type: integer, min: 0, max: 4}", dated=False)
    raw = {
        "patients": pd.DataFrame({"source_row": [2], "patient_id": ["A"], "included": ["yes"]}),
        "assessments": pd.DataFrame(
            {"source_row": [2, 3], "patient_id": ["A", "A"], "occasion": ["t0", "t1"],
             "q1": ["1", "0"], "q2": ["1", "0"], "q3": ["1", "0"], "eqvas": ["50", "70"]}
        ),
    }  # fmt: skip
    cleaned = clean(raw, contract, config)
    note = cleaned.log[cleaned.log["rule"] == "no_assessment_dates"]
    assert len(note) == 1 and note["action"].iat[0] == "not_checked"
    assert len(cleaned.tables["assessments"]) == 2


def test_implausible_dates_are_set_missing_by_the_configured_range(tmp_path, contract, config):
    """With cleaning.date_range 2000-2030 (config.yaml), a session in 2099 or 1900 is set
    missing and logged as out_of_range, naming the range; the row is kept."""
    import copy

    raw = {
        "patients": pd.DataFrame(
            {"source_row": [2], "patient_id": ["A"], "sex": ["F"], "age": ["40"], "included": ["yes"]}
        ),
        "sessions": pd.DataFrame(
            {"source_row": [2, 3, 4], "patient_id": ["A"] * 3,
             "session_date": ["2016-03-01", "2099-03-01", "1900-01-01"], "interventions": ["1"] * 3}
        ),
        "assessments": pd.DataFrame(
            {"source_row": [2], "patient_id": ["A"], "occasion": ["start"], "assessed_on": ["2016-02-01"]}
        ),
    }  # fmt: skip
    cleaned = clean(raw, contract, config)
    out = cleaned.log[cleaned.log["rule"] == "out_of_range"]
    assert sorted(out["value"]) == ["1900-01-01", "2099-03-01"]
    assert "dates from 2000-01-01 to 2030-12-31" in out["detail"].iat[0]
    assert cleaned.tables["sessions"]["session_date"].notna().sum() == 1
    wide = copy.deepcopy(config)
    wide["cleaning"]["date_range"] = ["1900-01-01", "2100-12-31"]
    assert (clean(raw, contract, wide).log["rule"] != "out_of_range").all()


def test_a_processed_table_reads_as_pandas_reads_it(tmp_path):
    """read_parquet is pandas.read_parquet (options passed on, dtypes kept); what it adds, arrow's
    freed memory given back, is measured by make bench, not here."""
    table = pd.DataFrame(
        {
            "patient_id": pd.array([f"p{i}" for i in range(2000)], dtype="string"),
            "pain": np.linspace(0, 10, 2000),
            "analysis_set": np.arange(2000) % 3 > 0,
            "sex": pd.Categorical(["F", "M"] * 1000),
        }
    )
    path = tmp_path / "patients.parquet"
    table.to_parquet(path, index=False)
    pd.testing.assert_frame_equal(read_parquet(path), pd.read_parquet(path))
    pd.testing.assert_frame_equal(
        read_parquet(path, columns=["pain", "sex"]), pd.read_parquet(path, columns=["pain", "sex"])
    )
