"""The bad-input corpus: real extracts come from hand-typed spreadsheets. Each input ends in a
clean result with every action logged (and the row-accounting invariant), or in one clear
message naming file, row or column."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cohort.core.errors import CohortError, ContractError
from cohort.io.cleaning import unaccounted_rows
from cohort.io.privacy import guard_identifiers
from cohort.io.reading import check_extract, read_extract
from cohort.io.synthetic import synthesize, write_extract
from cohort.workflow.stages.clean import clean, derive

from .conftest import BAD_INPUTS


def base_extract(tmp_path, contract, codebook, n=6):
    extract = synthesize(n, 11, contract, codebook, fault_rate=0)
    write_extract(extract, tmp_path)
    return extract


def run_clean(folder, contract, config, codebook):
    """What rule clean does before writing: file checks, identifier guard, cleaning, derivation."""
    BAD_INPUTS["hand-written"] += 1
    files = check_extract(folder, contract)
    raw = read_extract(folder, contract)
    guard_identifiers(
        raw, {k: str(v) for k, v in files.items()}, config["cleaning"]["allow_identifiers"]
    )
    cleaned = clean(raw, contract, config)
    assert unaccounted_rows(raw, cleaned) == {}
    patients, _, _ = derive(cleaned.tables, config, list(codebook))
    return raw, cleaned, patients


def test_latin1_with_swedish_letters(tmp_path, contract, config, codebook):
    extract = base_extract(tmp_path, contract, codebook)
    patients = extract.patients.copy()
    patients.loc[0, ["included", "exclusion_reason"]] = ["no", "avböjde, för långt att åka"]
    patients.to_csv(tmp_path / "patients.csv", index=False, encoding="latin-1")
    _, cleaned, _ = run_clean(tmp_path, contract, config, codebook)
    # Decoded right (as the cleaning log shows), and as free text counted as the 'other' code:
    # free text never reaches a published table.
    assert cleaned.tables["patients"]["exclusion_reason"].iat[0] == "other_reason"
    logged = cleaned.log[cleaned.log["rule"] == "uncoded_text"]
    assert logged["value"].tolist() == ["avböjde, för långt att åka"]
    assert logged["action"].tolist() == ["recoded_other_reason"]


def test_swedish_excel_export_semicolons_and_decimal_commas(tmp_path, contract, config, codebook):
    extract = base_extract(tmp_path, contract, codebook)
    patients = extract.patients.copy()
    patients["bmi"] = patients["bmi"].str.replace(".", ",", regex=False)
    patients.to_csv(tmp_path / "patients.csv", index=False, sep=";", encoding="utf-8-sig")
    _, cleaned, _ = run_clean(tmp_path, contract, config, codebook)
    expected = extract.patients["bmi"].astype(float).to_numpy()
    np.testing.assert_allclose(cleaned.tables["patients"]["bmi"].to_numpy(), expected)
    assert (cleaned.log["rule"] == "decimal_comma").sum() == len(patients)


def test_xlsx_extract(tmp_path, contract, config, codebook):
    extract = base_extract(tmp_path, contract, codebook)
    (tmp_path / "assessments.csv").unlink()
    a = extract.assessments.copy()
    a["assessed_on"] = pd.to_datetime(a["assessed_on"])  # real Excel date cells
    a["nprs"] = pd.to_numeric(a["nprs"])
    a.to_excel(tmp_path / "assessments.xlsx", index=False)
    _, cleaned, patients = run_clean(tmp_path, contract, config, codebook)
    out = cleaned.tables["assessments"]
    assert (
        out["assessed_on"].notna().all()
        and (out["assessed_on"] == a["assessed_on"].to_numpy()).all()
    )
    assert patients["analysis_set"].sum() == 6


def test_every_sheet_of_a_workbook_is_accounted_for(tmp_path, contract, config, codebook):
    """A second sheet holding data stops the run naming the sheets (the issue: 366 rows of a
    second sheet silently ignored); with the sheet declared in the contract, that one is read;
    a formula cell without a stored result is logged, not silently blank."""
    import dataclasses

    import openpyxl

    extract = base_extract(tmp_path, contract, codebook)
    (tmp_path / "patients.csv").unlink()
    book = openpyxl.Workbook()
    first = book.active
    first.title = "2019"
    first.append(list(extract.patients.columns))
    for row in extract.patients.itertuples(index=False):
        first.append(list(row))
    second = book.create_sheet("2020")
    second.append(list(extract.patients.columns))
    second.append(list(extract.patients.iloc[0]))
    first["I3"] = "=1+1"  # openpyxl stores no result: what another program's export may do
    book.save(tmp_path / "patients.xlsx")
    with pytest.raises(ContractError) as info:
        check_extract(tmp_path, contract)
    assert "2 sheets hold data (2019, 2020)" in str(info.value) and "sheet:" in str(info.value)
    declared = dataclasses.replace(
        contract,
        tables={
            **contract.tables,
            "patients": dataclasses.replace(contract.table("patients"), sheet="2019"),
        },
    )
    _, cleaned, patients = run_clean(tmp_path, declared, config, codebook)
    assert len(patients) == len(extract.patients)
    note = cleaned.log[cleaned.log["rule"] == "formula_without_value"]
    column = extract.patients.columns[8]
    assert list(note["column"]) == [column] and "sheet row 3" in note["detail"].iat[0]


def test_extra_and_reordered_columns(tmp_path, contract, config, codebook):
    extract = base_extract(tmp_path, contract, codebook)
    p = extract.patients
    p[list(reversed(p.columns))].assign(notes="x").to_csv(tmp_path / "patients.csv", index=False)
    _, cleaned, _ = run_clean(tmp_path, contract, config, codebook)
    assert list(cleaned.log["column"]) == ["notes"]
    pd.testing.assert_series_equal(
        cleaned.tables["patients"]["patient_id"].astype(str),
        p["patient_id"].astype(str),
        check_names=False,
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2016-03-06", None),
        ("06/03/2016", "%d/%m/%Y"),
        ("20160306", "%Y%m%d"),
        ("42435", "Excel serial day number"),
        ("06.03.2016", "%d.%m.%Y"),
    ],
)
def test_date_forms(tmp_path, contract, config, codebook, text, expected):
    extract = base_extract(tmp_path, contract, codebook)
    s = extract.sessions.copy()
    s.loc[1, "session_date"] = text
    s.to_csv(tmp_path / "sessions.csv", index=False)
    _, cleaned, _ = run_clean(tmp_path, contract, config, codebook)
    assert cleaned.tables["sessions"]["session_date"].iat[1] == pd.Timestamp("2016-03-06")
    logged = cleaned.log[cleaned.log["rule"] == "date_format"]
    assert (logged["detail"].tolist() == [f"read as {expected}"]) if expected else logged.empty


@pytest.mark.parametrize(
    ("value", "rule"),
    [
        ("-3", "out_of_range"),
        ("1e12", "out_of_range"),
        ("NaN", "unparseable_number"),
        ("inf", "unparseable_number"),
        ("-inf", "unparseable_number"),
        ("seven", "unparseable_number"),
    ],
)
def test_bad_numbers(tmp_path, contract, config, codebook, value, rule):
    extract = base_extract(tmp_path, contract, codebook)
    a = extract.assessments.copy()
    a.loc[0, "eqvas"] = value
    a.to_csv(tmp_path / "assessments.csv", index=False)
    _, cleaned, _ = run_clean(tmp_path, contract, config, codebook)
    assert cleaned.log[["rule", "action", "column", "source_row"]].values.tolist() == [
        [rule, "set_missing", "eqvas", 2]
    ]
    assert pd.isna(cleaned.tables["assessments"]["eqvas"].iat[0])


def test_session_after_follow_up_is_flagged_not_dropped(tmp_path, contract, config, codebook):
    extract = base_extract(tmp_path, contract, codebook)
    s = extract.sessions.copy()
    a = extract.assessments
    pid = a.loc[a["occasion"] == "followup_1y", "patient_id"].iat[0]
    late = pd.Timestamp(
        a.loc[(a["patient_id"] == pid) & (a["occasion"] == "followup_1y"), "assessed_on"].iat[0]
    ) + pd.Timedelta(days=10)
    s = pd.concat(
        [
            s,
            pd.DataFrame(
                {
                    "patient_id": [pid],
                    "session_date": [late.strftime("%Y-%m-%d")],
                    "interventions": ["1"],
                }
            ),
        ]
    )
    s.to_csv(tmp_path / "sessions.csv", index=False)
    _, cleaned, _ = run_clean(tmp_path, contract, config, codebook)
    flagged = cleaned.log[cleaned.log["rule"] == "session_after_last_occasion"]
    assert len(flagged) == 1 and flagged["action"].iat[0] == "flagged"
    assert len(cleaned.tables["sessions"]) == len(s)


def test_patient_with_500_sessions(tmp_path, contract, config, codebook):
    extract = base_extract(tmp_path, contract, codebook)
    s = extract.sessions
    pid = s["patient_id"].iat[0]
    many = pd.DataFrame(
        {
            "patient_id": pid,
            "session_date": pd.date_range("2015-01-01", periods=500).strftime("%Y-%m-%d"),
            "interventions": "1;2",
        }
    )
    pd.concat([s[s["patient_id"] != pid], many]).to_csv(tmp_path / "sessions.csv", index=False)
    _, _, patients = run_clean(tmp_path, contract, config, codebook)
    assert int(patients.set_index("patient_id").at[pid, "n_sessions"]) == 500


def test_header_only_files_leave_nobody_to_analyse(tmp_path, contract, config, codebook):
    base_extract(tmp_path, contract, codebook)
    for name in ("patients", "sessions", "assessments"):
        header = (tmp_path / f"{name}.csv").read_text().splitlines()[0]
        (tmp_path / f"{name}.csv").write_text(header + "\n")
    _, cleaned, patients = run_clean(tmp_path, contract, config, codebook)
    assert len(patients) == 0 and cleaned.log.empty


def test_no_included_patient(tmp_path, contract, config, codebook):
    extract = base_extract(tmp_path, contract, codebook)
    extract.patients.assign(included="no").to_csv(tmp_path / "patients.csv", index=False)
    _, _, patients = run_clean(tmp_path, contract, config, codebook)
    assert not patients["analysis_set"].any()
    assert set(patients["flow_status"]) == {"not included"}


def test_all_outcomes_missing(tmp_path, contract, config, codebook):
    extract = base_extract(tmp_path, contract, codebook)
    a = extract.assessments.copy()
    outcome_columns = ["nprs", *(f"dri_{i:02d}" for i in range(1, 13)), "eqvas"]
    a[outcome_columns] = ""
    a.to_csv(tmp_path / "assessments.csv", index=False)
    _, _, patients = run_clean(tmp_path, contract, config, codebook)
    assert set(patients["flow_status"]) == {"no start assessment"}


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("811228-9874", "Swedish personal identity number"),
        ("198112289874", "Swedish personal identity number"),
        ("anna.svensson@example.se", "e-mail address"),
        ("070-123 45 67", "phone number"),
    ],
)
def test_identifiers_stop_the_run_naming_where(tmp_path, contract, config, codebook, value, kind):
    extract = base_extract(tmp_path, contract, codebook)
    p = extract.patients.copy()
    p.loc[3, ["included", "exclusion_reason"]] = ["no", f"see {value}"]
    p.to_csv(tmp_path / "patients.csv", index=False)
    with pytest.raises(CohortError) as info:
        run_clean(tmp_path, contract, config, codebook)
    message = str(info.value)
    assert f"patients.csv line 5, column exclusion_reason: {kind}" in message
    assert value not in message  # the message says where, not what


def test_identifier_guard_can_be_overridden(tmp_path, contract, config, codebook):
    extract = base_extract(tmp_path, contract, codebook)
    p = extract.patients.copy()
    p.loc[0, "exclusion_reason"] = "811228-9874"
    p.to_csv(tmp_path / "patients.csv", index=False)
    allowed = {**config, "cleaning": {**config["cleaning"], "allow_identifiers": True}}
    run_clean(tmp_path, contract, allowed, codebook)


def test_luhn_failure_is_not_an_identifier(tmp_path, contract, config, codebook):
    extract = base_extract(tmp_path, contract, codebook)
    p = extract.patients.copy()
    p.loc[0, "exclusion_reason"] = "ref 811228-9875"  # check digit wrong: not a personnummer
    p.to_csv(tmp_path / "patients.csv", index=False)
    run_clean(tmp_path, contract, config, codebook)


def test_ragged_csv_names_the_file(tmp_path, contract, config, codebook):
    base_extract(tmp_path, contract, codebook)
    path = tmp_path / "sessions.csv"
    path.write_text(path.read_text() + "P0001,2016-01-01,1,extra,fields\n")
    with pytest.raises(ContractError, match=r"sessions\.csv: cannot be parsed"):
        run_clean(tmp_path, contract, config, codebook)


CELL = st.one_of(
    st.sampled_from(
        [
            "",
            " ",
            "NaN",
            "inf",
            "-1",
            "1e9",
            "12,5",
            "2016-02-30",
            "06/03/2016",
            "42435",
            "ÅÄÖ",
            "yes",
            "F",
        ]
    ),
    st.text(
        alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
        max_size=6,
    ),
    st.integers(-10, 200).map(str),
)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_generated_corruption_of_a_real_extract_is_handled(
    tmp_path_factory, contract, config, codebook, data
):
    """Random cells of a generated extract replaced by junk, written to CSV and read back:
    a clean result with the invariant, or a CohortError; never another exception."""
    BAD_INPUTS["generated"] += 1
    folder = tmp_path_factory.mktemp("gen")
    extract = synthesize(8, 3, contract, codebook, fault_rate=0)
    tables = {
        name: getattr(extract, name).copy() for name in ("patients", "sessions", "assessments")
    }
    for _ in range(data.draw(st.integers(1, 12))):
        name = data.draw(st.sampled_from(list(tables)))
        df = tables[name]
        row = data.draw(st.integers(0, len(df) - 1))
        column = data.draw(st.sampled_from(list(df.columns)))
        df.iat[row, df.columns.get_loc(column)] = data.draw(CELL)
    for name, df in tables.items():
        df.to_csv(folder / f"{name}.csv", index=False)
    try:
        raw = read_extract(folder, contract)
        cleaned = clean(raw, contract, config)
        assert unaccounted_rows(raw, cleaned) == {}
        derive(cleaned.tables, config, list(codebook))
    except CohortError:
        pass


def test_file_lines_are_reported_after_multi_line_quoted_fields(tmp_path):
    """A quoted field with line breaks: each record's source_row is the line it starts on."""
    from cohort.io.reading import read_raw_table

    path = tmp_path / "t.csv"
    path.write_text(
        'patient_id,note,x\nA,"line one\nline two",1\nB,plain,2\nC,"x\ny\nz",3\nD,d,4\n'
    )
    assert read_raw_table(path)["source_row"].tolist() == [2, 4, 5, 8]


def test_utf16_is_read_as_utf16_and_nul_bytes_stop(tmp_path):
    from cohort.io.reading import read_raw_table

    path = tmp_path / "t.csv"
    path.write_bytes("patient_id,namn\nA,Åsa\n".encode("utf-16"))
    assert read_raw_table(path)["namn"].tolist() == ["Åsa"]
    path.write_bytes("patient_id,x\nA,1\n".encode("utf-16-le"))  # no byte-order mark
    with pytest.raises(ContractError, match="NUL bytes"):
        read_raw_table(path)


def test_a_file_without_a_header_row_is_refused_without_showing_its_first_row(
    tmp_path, contract, codebook
):
    """The first line is data (an identity number in it): the message names the file and the
    missing columns, and shows none of the first line's values."""
    extract = base_extract(tmp_path, contract, codebook)
    lines = extract.patients.to_csv(index=False, header=False).splitlines()
    lines[0] = "121212-1212," + lines[0].split(",", 1)[1]
    (tmp_path / "patients.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(ContractError) as info:
        check_extract(tmp_path, contract)
    message = str(info.value)
    assert "patients.csv: required column(s) missing" in message
    assert "without a header row" in message and "1212" not in message
