"""Outputs kept by content (cohort.core.cache): the cache itself, and the three rules that use it
(publish's suppression pattern, the figures, the HTML and Word tables) give the same bytes with
it as without it, remake what their own inputs changed, and keep what they did not."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

import cohort.disclosure.optimal as optimal
from cohort.core.cache import OutputCache, content_key
from cohort.disclosure import least_cost_pattern
from cohort.io.contract import level_labels, load_contract
from cohort.workflow.stages.figures import FIGURES, figures_stage

from .conftest import ROOT
from .test_disclosure_optimal import OPTIMAL, small_register


def test_a_kept_output_comes_back_as_it_was_and_only_the_latest_versions_stay(tmp_path):
    cache = OutputCache(tmp_path, keep=2)
    assert cache.get("figure", "a") is None
    cache.put("figure", "a", [b"png a", b"pdf a"])
    assert cache.get("figure", "a") == [b"png a", b"pdf a"]
    for key in ("b", "c"):
        cache.put("figure", key, [key.encode()])
    kept = sorted(p.name for p in (tmp_path / "figure").iterdir())
    assert len(kept) == 2 and "c" in kept  # the newest stays; one of the older two went
    assert cache.hits == ["figure"] and cache.misses == ["figure"]
    assert not list((tmp_path / "figure").glob(".new-*"))  # no half-written entry left
    assert OutputCache(None).get("figure", "a") is None  # no folder: nothing kept


def test_content_keys_do_not_collide_when_parts_are_cut_differently():
    assert content_key("ab", "c") != content_key("a", "bc")
    assert content_key("ab", "c") == content_key(b"ab", "c")


def test_the_pattern_of_the_same_register_is_kept_and_a_changed_one_is_solved(
    tmp_path, monkeypatch
):
    cache = OutputCache(tmp_path)
    first = least_cost_pattern(small_register(), OPTIMAL, cache)
    solved = []
    real = optimal._least_cost_pattern
    monkeypatch.setattr(
        optimal, "_least_cost_pattern", lambda reg, s: solved.append(1) or real(reg, s)
    )
    again = least_cost_pattern(small_register(), OPTIMAL, cache)
    assert solved == [] and again == first  # kept: the same keys, reasons, method and detail
    changed = small_register()
    changed.values[("r",)] += 1  # one count differs: another program
    least_cost_pattern(changed, OPTIMAL, cache)
    least_cost_pattern(small_register(), replace(OPTIMAL, min_cell=4), cache)
    assert solved == [1, 1]


def test_a_fallback_pattern_is_not_kept(tmp_path):
    """A pattern cut short by the time limit depends on the machine's speed: solved again."""
    cache = OutputCache(tmp_path)
    short = replace(OPTIMAL, time_limit=1e-9)
    assert least_cost_pattern(small_register(), short, cache).method == "greedy"
    assert not (tmp_path / optimal.CACHE_SLOT).exists()


FIGURE_TABLES = [
    "flow", "baseline", "outcomes", "lmm", "predictors", "threshold_sweep", "responder_directions",
    "responder_course", "clinical_significance_rates", "clinical_significance_definitions",
    "interventions", "intervention_cooccurrence",
]  # fmt: skip
FIGURE_OUTPUTS = ["flow", "sweep", "directions", "course"]  # four: the suite's time


@pytest.fixture(scope="module")
def figure_inputs(tmp_path_factory):
    """The default study's published tables (copies: a test edits one), its settings and
    levels, and a function drawing them all into a new folder with a given cache."""
    tables_dir = tmp_path_factory.mktemp("tables")
    for name in FIGURE_TABLES:
        shutil.copy(ROOT / f"results/tables/{name}.csv", tables_dir / f"{name}.csv")
    config = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    settings = {key: config[key] for key in ("study", "occasions", "outcomes")}
    levels = level_labels(load_contract(ROOT / "config/contract.yaml", config))

    def draw(out: Path, cache: Path | None, settings=settings) -> Path:
        out.mkdir()
        figures_stage(
            {name: str(tables_dir / f"{name}.csv") for name in FIGURE_TABLES},
            settings,
            levels,
            {
                **{name: str(out / f"{name}.png") for name in FIGURE_OUTPUTS},
                "legends": str(out / "legends.md"),
                "legends_html": str(out / "legends.html"),
            },
            cache=str(cache) if cache else None,
        )
        return out

    return tables_dir, settings, draw


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_figures_from_the_cache_are_the_figures_drawn(figure_inputs, tmp_path, caplog):
    """Without a cache, with an empty one and with a full one: the same bytes; after an MCID
    edit only the figure that shows the MCID is drawn again, after a table's edit only the
    figures that read it."""
    tables_dir, settings, draw = figure_inputs
    cache = tmp_path / "cache"
    plain = _files(draw(tmp_path / "plain", None))
    assert _files(draw(tmp_path / "first", cache)) == plain
    caplog.set_level("INFO", logger="cohort.workflow.stages.figures")
    caplog.clear()
    assert _files(draw(tmp_path / "second", cache)) == plain
    assert "4 kept" in caplog.text and "0 remade" in caplog.text

    mcid = yaml.safe_load(yaml.safe_dump(settings))
    mcid["outcomes"]["pain"]["mcid"]["absolute"] = 3
    caplog.clear()
    draw(tmp_path / "mcid", cache, mcid)
    assert "1 remade (sweep)" in caplog.text

    course = tables_dir / "responder_course.csv"
    original = course.read_text()
    try:
        course.write_text(original + "# An edited note.\n")
        caplog.clear()
        draw(tmp_path / "course", cache)
    finally:
        course.write_text(original)
    remade = [n for n in FIGURE_OUTPUTS if "responder_course" in FIGURES[n].reads]
    assert remade == ["course"] and "1 remade (course)" in caplog.text


def test_publication_tables_from_the_cache_are_the_tables_written(tmp_path):
    """The HTML pages and the Word document: the same bytes from an empty and a full cache."""
    from cohort.workflow.stages.publication import publication_stage

    config = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    tables = {p.stem: str(p) for p in sorted((ROOT / "results/tables").glob("*.csv"))}
    levels = level_labels(load_contract(ROOT / "config/contract.yaml", config))

    def write(folder: Path) -> dict[str, bytes]:
        out = {
            "html": str(folder / "html"),
            "word": str(folder / "tables.docx"),
            "summary": str(folder / "summary.html"),
            "disclosure_report": str(folder / "disclosure_report.html"),
        }
        folder.mkdir()
        publication_stage(
            tables,
            str(ROOT / "results/summary.md"),
            str(ROOT / "results/disclosure_report.md"),
            {key: config[key] for key in ("study", "occasions", "outcomes")},
            levels,
            out,
            cache=str(tmp_path / "cache"),
        )
        return {
            p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*"))
            if p.is_file()
        }

    first = write(tmp_path / "first")
    assert write(tmp_path / "second") == first
    assert len(list((tmp_path / "cache").iterdir())) == len(tables) + 1  # each page, the Word
