"""A variable in two roles (issue 31): every pairing of the roles a config can give a patient
variable is tried; the incompatible ones get one message naming both keys, the compatible ones
none, and the arm as a subgroup is handled (left to the group tables)."""

from __future__ import annotations

import copy
import itertools

import pytest

from cohort.core.config import subgroup_variables
from cohort.io.contract import INCOMPATIBLE_ROLES, role_conflicts

from .conftest import run_cli


def give(config: dict, role: str, variable: str) -> str:
    """Give `variable` the role in `config`; returns the key that names it."""
    if role == "covariate":
        config["covariates"] = [*config.get("covariates", []), variable]
        return f"covariates[{len(config['covariates']) - 1}]"
    if role == "subgroup":
        config["subgroups"] = [*config.get("subgroups", []), variable]
        return f"subgroups[{len(config['subgroups']) - 1}]"
    if role == "comparison":
        config["comparison"] = {"variable": variable, "reference": "x"}
        return "comparison.variable"
    if role == "cluster":
        config["cluster"] = variable
        return "cluster"
    if role == "dose":
        config.setdefault("models", {})["dose"] = variable
        return "models.dose"
    raise AssertionError(role)


ROLES = ["covariate", "subgroup", "comparison", "cluster", "dose"]
PAIRS = [*itertools.combinations(ROLES, 2), ("covariate", "covariate"), ("subgroup", "subgroup")]


@pytest.mark.parametrize("first, second", PAIRS)
def test_every_pairing_of_roles(config, first, second):
    study = copy.deepcopy(config)
    for key in ("covariates", "subgroups"):
        study[key] = []
    study.pop("comparison", None)
    study.pop("cluster", None)
    study["models"] = {**study["models"], "dose": None}
    key_a = give(study, first, "v")
    key_b = give(study, second, "v")
    problems = role_conflicts(study)
    if frozenset({first, second}) in INCOMPATIBLE_ROLES:
        assert len(problems) == 1, problems
        assert f"'{key_a}'" in problems[0] and f"'{key_b}'" in problems[0]
        assert "both name 'v'" in problems[0]
    else:
        assert problems == []


@pytest.mark.parametrize("role", ["covariate", "comparison", "cluster", "dose"])
def test_an_outcomes_baseline_score_in_another_role(config, role):
    study = copy.deepcopy(config)
    study["covariates"] = []
    key = give(study, role, "pain_start")  # pain at the first occasion (start)
    problems = role_conflicts(study)
    assert len(problems) == 1 and f"'{key}'" in problems[0] and "'outcomes.pain'" in problems[0]


def test_the_arm_as_a_subgroup_is_left_to_the_group_tables(config):
    study = copy.deepcopy(config)
    study["comparison"] = {"variable": "sex", "reference": "F"}
    study["covariates"] = ["age"]
    assert role_conflicts(study) == []
    assert "sex" in study["subgroups"] and "sex" not in subgroup_variables(study)
    assert subgroup_variables(config) == config["subgroups"]


def test_check_names_both_keys_of_a_comparison_that_is_also_a_covariate(tmp_path):
    """The trial's case: `comparison: {variable: sex}` with sex among the covariates ended in a
    traceback in rule groups; `cohort check` now says which keys, before any rule runs."""
    study = tmp_path / "study.yaml"
    study.write_text("comparison: {variable: sex, reference: F}\n")
    result = run_cli("check", "--config", str(study))
    assert result.returncode != 0
    assert "config keys 'covariates[1]' and 'comparison.variable' both name 'sex'" in result.stderr
    assert "Traceback" not in result.stderr
