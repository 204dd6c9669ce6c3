"""Config validation: the schema and the cross-reference checks name the offending key."""

from __future__ import annotations

import copy
from pathlib import Path

import pandas as pd
import pytest

from cohort.core.config import read_yaml, validate_config
from cohort.core.errors import ConfigError
from cohort.io.contract import load_contract

from .conftest import run_cli

SCHEMA = read_yaml("config/config.schema.yaml")


def rejected(config: dict) -> str:
    with pytest.raises(ConfigError) as info:
        validate_config(config, SCHEMA)
    return str(info.value)


def test_default_config_is_valid(config):
    validate_config(config, SCHEMA)


def test_schema_is_draft_2020_12_and_closed():
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert SCHEMA["additionalProperties"] is False


def test_unknown_top_level_key_is_named(config):
    bad = copy.deepcopy(config)
    bad["outcome"] = bad.pop("outcomes")  # a typo of a required key
    message = rejected(bad)
    assert "'outcome'" in message and "outcomes" in message


def test_typo_in_nested_key_is_named(config):
    bad = copy.deepcopy(config)
    bad["outcomes"]["pain"]["mcid"]["absolut"] = 2
    message = rejected(bad)
    assert "outcomes.pain.mcid" in message and "'absolut'" in message


def test_wrong_type_is_named(config):
    bad = copy.deepcopy(config)
    bad["outcomes"]["pain"]["mcid"]["absolute"] = "two"
    message = rejected(bad)
    assert "outcomes.pain.mcid.absolute" in message and "'two'" in message


@pytest.mark.parametrize(
    ("key", "value", "fragment"),
    [
        ("absolute", -2, "outcomes.pain.mcid.absolute"),
        ("percent", 150, "outcomes.pain.mcid.percent"),
        ("absolute", 25, "exceeds the range"),
        ("combine", "any", "outcomes.pain.mcid.combine"),
    ],
)
def test_bad_threshold_is_rejected(config, key, value, fragment):
    bad = copy.deepcopy(config)
    bad["outcomes"]["pain"]["mcid"][key] = value
    assert fragment in rejected(bad)


def test_threshold_needed(config):
    bad = copy.deepcopy(config)
    bad["outcomes"]["pain"]["mcid"].update(absolute=None, percent=None)
    assert "give an absolute and/or a percent threshold" in rejected(bad)


def test_min_answered_cannot_exceed_items(config):
    bad = copy.deepcopy(config)
    bad["outcomes"]["disability"]["source"]["min_answered"] = 13
    assert "outcomes.disability.source.min_answered" in rejected(bad)


def test_duplicate_occasions_rejected(config):
    bad = copy.deepcopy(config)
    bad["occasions"].append(dict(bad["occasions"][0]))
    assert "occasion names must be unique" in rejected(bad)


def test_outcome_column_must_be_in_contract(config):
    bad = copy.deepcopy(config)
    bad["outcomes"]["pain"]["source"] = {"column": "vas"}
    with pytest.raises(ConfigError, match="outcomes.pain.source.*'vas'"):
        load_contract("config/contract.yaml", bad)


def test_every_assumption_is_marked(config):
    """paper-facts.md: every default not in the paper says ASSUMPTION next to it."""
    for name, outcome in config["outcomes"].items():
        mcid = outcome["mcid"]
        assert mcid.get("assumption") is True, name
        assert "ASSUMPTION" in mcid["reference"], name
    assert config["derived"]["anxious_depressed"]["assumption"] is True
    text = Path("config/config.yaml").read_text(encoding="utf-8")
    assert text.count("ASSUMPTION") >= 6


def test_referenced_but_undeclared_outcome_is_named(config):
    bad = copy.deepcopy(config)
    bad["responders"]["paper"]["discharge"]["fatigue"] = 40
    assert "'responders.paper.discharge.fatigue'" in rejected(bad)
    assert "referenced but not declared" in rejected(bad)


def test_paper_rates_need_a_follow_up_occasion(config):
    bad = copy.deepcopy(config)
    bad["responders"]["paper"]["start"] = {"pain": 10}
    assert "'responders.paper.start'" in rejected(bad)


def test_could_not_improve_handling_is_an_enumeration(config):
    bad = copy.deepcopy(config)
    bad["responders"]["could_not_improve"] = "ignore"
    assert "responders.could_not_improve" in rejected(bad)


def test_cli_outside_a_project_folder_says_what_it_needs(tmp_path):
    """`pip install .` puts the package anywhere; run outside a project folder the CLI says
    that it needs one and how to point it at a config, not a traceback."""
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "cohort", "synthesize", "--n", "5", "--seed", "1", "--out", "x"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "project folder" in result.stderr and "--config" in result.stderr


def test_every_key_of_the_schema_is_described():
    """The schema's descriptions are the one documentation of the config: every key has one."""
    from cohort.workflow.config_docs import schema_keys

    undocumented = [path for path, node, _ in schema_keys(SCHEMA) if not node.get("description")]
    assert undocumented == []
    assert len(schema_keys(SCHEMA)) > 80  # the walk reaches nested, named and list keys


def test_config_comments_and_reference_are_generated_from_the_schema():
    """docs/configuration.md and the key comments of config.yaml are what the schema gives
    (`python -m cohort config-docs --check` exits 0), and every top-level key of config.yaml
    opens with its description."""
    from cohort.workflow.cli import config_docs
    from cohort.workflow.config_docs import configuration_markdown

    assert config_docs(Path.cwd(), check=True) == 0
    reference = Path("docs/configuration.md").read_text(encoding="utf-8")
    assert reference == configuration_markdown(SCHEMA)
    text = Path("config/config.yaml").read_text(encoding="utf-8")
    first_words = " ".join(SCHEMA["properties"]["disclosure"]["description"].split()[:6])
    assert f"# {first_words}" in text


def test_regenerated_comments_replace_the_description_and_keep_the_notes():
    """A stale description is rewritten; the notes after a line of only '#' stay as written; a
    key under a user-named key (an outcome) is left alone."""
    from cohort.workflow.config_docs import commented_config

    schema = {
        "properties": {
            "statistics": {
                "description": "Conventions.",
                "properties": {"quantiles": {"description": "Definition of quartiles."}},
            },
            "outcomes": {
                "additionalProperties": {"properties": {"label": {"description": "Label."}}}
            },
        }
    }
    text = (
        "statistics:\n  # old words\n  #\n  # this study: SPSS, as the paper\n  quantiles: spss\n"
        "outcomes:\n  pain:\n    # my own remark\n    label: Pain\n"
    )
    assert commented_config(text, schema) == (
        "# Conventions.\nstatistics:\n  # Definition of quartiles.\n  #\n"
        "  # this study: SPSS, as the paper\n  quantiles: spss\n"
        "outcomes:\n  pain:\n    # my own remark\n    label: Pain\n"
    )


def test_config_docs_check_names_a_stale_file(tmp_path, capsys):
    from cohort.workflow.cli import config_docs

    (tmp_path / "config").mkdir()
    (tmp_path / "docs").mkdir()
    (tmp_path / "config/config.schema.yaml").write_text(
        "properties:\n  study:\n    description: What the study is.\n"
    )
    (tmp_path / "config/config.yaml").write_text("study:\n  name: x\n")
    assert config_docs(tmp_path, check=True) == 1
    assert "config/config.yaml: out of date" in capsys.readouterr().err
    assert config_docs(tmp_path, check=False) == 0
    assert (
        tmp_path / "config/config.yaml"
    ).read_text() == "# What the study is.\nstudy:\n  name: x\n"
    assert config_docs(tmp_path, check=True) == 0


# --- A new user's study: config checked against the contract and the derived columns ------------
def contract_problems(config: dict, contract_path: str = "config/contract.yaml") -> str:
    with pytest.raises(ConfigError) as info:
        load_contract(contract_path, config)
    return str(info.value)


def test_a_misspelt_column_is_named_with_the_closest_names(config):
    broken = copy.deepcopy(config)
    broken["subgroups"] = ["sex", "smokr"]
    broken["covariates"] = [*config["covariates"], "bmii"]
    message = contract_problems(broken)
    assert "config key 'subgroups[1]': 'smokr' is not a column" in message
    assert "did you mean 'smoker'?" in message
    assert "config key 'covariates[4]': 'bmii'" in message and "'bmi'" in message


def test_a_subgroup_must_be_categorical_with_few_levels(config):
    numeric = copy.deepcopy(config)
    numeric["subgroups"] = ["age"]  # one row per distinct age, before this check
    assert "'age' is numeric; a subgroup must be categorical" in contract_problems(numeric)
    few = copy.deepcopy(config)
    few["responders"]["subgroup_max_levels"] = 4
    assert "'main_pain_location' has 5 levels" in contract_problems(few)


def test_session_columns_without_session_data_say_why(config, tmp_path):
    """A study without sessions that keeps the default dose or categories is told why."""
    import yaml

    contract = read_yaml("config/contract.yaml")
    del contract["tables"]["sessions"]
    (tmp_path / "contract.yaml").write_text(yaml.safe_dump(contract))
    study = copy.deepcopy(config)
    del study["interventions"]
    message = contract_problems(study, str(tmp_path / "contract.yaml"))
    assert "config key 'models.dose': 'n_sessions'" in message
    assert "derived from session data" in message
    assert "config key 'models.categories[0]'" in message


def test_table2_rows_comparison_and_cluster_are_checked(config):
    broken = copy.deepcopy(config)
    broken["baseline"][0] = {"variable": "sex", "label": "x", "statistic": "mean_sd"}
    broken["comparison"] = {"variable": "sex", "reference": "X"}
    broken["cluster"] = "clinic"
    message = contract_problems(broken)
    assert "'baseline[0].variable': 'sex' is categorical; mean_sd needs a numeric column" in message
    assert "config key 'comparison.reference': 'X' is not a code of 'sex' (F, M)" in message
    assert "config key 'cluster': 'clinic' is not a column" in message


def test_the_column_catalogue_is_the_patient_table(config, contract, codebook):
    """patient_columns (known before any rule) lists what derivations.patient_table makes."""
    from cohort.io.contract import patient_columns
    from cohort.io.reading import read_extract
    from cohort.workflow.stages.clean import clean, derive

    raw = read_extract("data/raw/synthetic", contract)
    patients, _, _ = derive(clean(raw, contract, config).tables, config, list(codebook))
    derived_only = {"source_row", "flow_status", "analysis_set"}
    assert set(patient_columns(config, contract)) == set(patients.columns) - derived_only


def test_a_listed_replaced_key_that_is_absent_is_removed_and_a_study_inherits_no_paper(config):
    from cohort.core.config import merge_study

    study = {
        "replaces": ["interventions", "comparison"],
        "study": {"name": "other", "title": "Other", "synthetic": False},
    }
    merged = merge_study(config, study)
    assert "interventions" not in merged and "comparison" not in merged
    assert merged["study"] == study["study"]  # no paper of the default study
    assert "paper" not in merged["responders"] and "paper_source" not in merged["responders"]
    tweak = merge_study(config, {"disclosure": {"min_cell": 10}})  # the same study, tweaked
    assert tweak["responders"]["paper"] == config["responders"]["paper"]


def test_output_folders_are_safe(tmp_path):
    from cohort.core.config import output_path_problems

    inside = output_path_problems({"results": "out", "processed": "out/processed"}, tmp_path, False)
    assert "output.processed': out/processed lies inside output.results" in inside[0]
    outside = output_path_problems({"results": "/elsewhere", "processed": "p"}, tmp_path, False)
    assert "outside the project folder; set output.allow_outside: true" in outside[0]
    assert output_path_problems({"results": "/elsewhere", "processed": "p"}, tmp_path, True) == []


def test_a_templated_study_file_is_refused(tmp_path):
    from cohort.core.config import load_study

    path = tmp_path / "study.yaml"
    path.write_text("__use_yte__: true\nstudy:\n  ?if True:\n    name: x\n")
    with pytest.raises(ConfigError, match="YTE templating"):
        load_study(path, Path.cwd() / "config/config.yaml")


def test_dictionary_and_check_take_a_study_file(tmp_path):
    """`cohort dictionary --config STUDY` and `cohort check --config STUDY` merge the study
    file over the default config, as snakemake --configfile does."""
    study = tmp_path / "study.yaml"
    study.write_text("disclosure: {min_cell: 10}\n")
    result = run_cli("dictionary", "--config", str(study), "--out", str(tmp_path / "d.md"))
    assert result.returncode == 0, result.stderr
    assert "`patients.csv`" in (tmp_path / "d.md").read_text()
    result = run_cli("check", "--config", str(study))
    assert result.returncode == 0 and "is ready to run" in result.stdout, result.stderr
    study.write_text("study: {name: x\n  bad")
    result = run_cli("check", "--config", str(study))
    assert result.returncode == 2 and "not valid YAML" in result.stderr and "line" in result.stderr
    assert "Traceback" not in result.stderr


def test_identity_numbers_with_any_separator_or_in_a_header_are_caught():
    """A personnummer with a space, an en dash or no separator, and one used as a column name,
    stop the run; the message says where, never the value."""
    from cohort.io.privacy import find_identifiers

    pnr = "19121212{}1212"  # Skatteverket's test number 121212-1212
    values = [pnr.format(sep)[2:] for sep in (" ", "\u2013", "")]
    raw = {
        "patients": pd.DataFrame(
            {"source_row": [2, 3, 4], "patient_id": ["a", "b", "c"], "note": values}
        ),
        "assessments": pd.DataFrame({"source_row": [], "patient_id": [], pnr.format("-"): []}),
    }
    found = find_identifiers(raw, {"patients": "p.csv", "assessments": "a.csv"})
    assert len(found) == 4
    assert "a.csv line 1 (header), column 2: Swedish personal identity number" in found
    assert not any("1212" in f for f in found)
