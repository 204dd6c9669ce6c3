"""Figures at journal standard: every figure of the default study drawn from the committed
results tables, checked as printed: one or two columns wide (85 or 180 mm), 300 dpi, no text
below 7 pt, a vector PDF beside the PNG, both byte-reproducible (no date, no software stamp),
and a legend for each in legends.md."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pytest
import yaml
from PIL import Image

from cohort.io.contract import level_labels, load_contract
from cohort.publish import figures
from cohort.workflow.stages.figures import figures_stage

from .conftest import ROOT

TABLES = [
    "flow", "baseline", "outcomes", "lmm", "predictors", "threshold_sweep", "responder_directions",
    "responder_course", "clinical_significance_rates", "clinical_significance_definitions",
    "interventions", "intervention_cooccurrence",
]  # fmt: skip
OUTPUTS = [
    "flow", "trajectories", "lmm", "forest", "sweep", "directions", "course", "significance",
    "interventions", "cooccurrence",
]  # fmt: skip


@pytest.fixture(scope="module")
def drawn(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("figures")
    config = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    figures_stage(
        {name: str(ROOT / f"results/tables/{name}.csv") for name in TABLES},
        {key: config[key] for key in ("study", "occasions", "outcomes")},
        level_labels(load_contract(ROOT / "config/contract.yaml", config)),
        {
            **{name: str(out / f"{name}.png") for name in OUTPUTS},
            "legends": str(out / "legends.md"),
            "legends_html": str(out / "legends.html"),
        },
    )
    return out


@pytest.mark.parametrize("name", OUTPUTS)
def test_each_figure_is_printable_at_column_width(drawn, name):
    png = drawn / f"{name}.png"
    with Image.open(png) as image:
        dpi = image.info["dpi"]
        width_mm = image.size[0] / dpi[0] * 25.4
    assert dpi[0] == pytest.approx(300, abs=0.01)
    assert width_mm == pytest.approx(85, abs=0.5) or width_mm == pytest.approx(180, abs=0.5)
    pdf = (drawn / f"{name}.pdf").read_bytes()
    assert pdf.startswith(b"%PDF") and b"CreationDate" not in pdf and b"matplotlib" not in pdf


def test_every_figure_has_its_legend(drawn):
    legends = (drawn / "legends.md").read_text()
    for name in OUTPUTS:
        assert f"`{name}.png`" in legends
    assert "`outcome_changes.png`" in legends  # drawn by rule outcomes
    assert "SYNTHETIC DATA" in legends  # the table's notes travel with the figure


def test_the_committed_figures_are_journal_sized():
    for png in sorted((ROOT / "results/figures").glob("*.png")):
        with Image.open(png) as image:
            assert image.info["dpi"][0] == pytest.approx(300, abs=0.01), png.name
        assert png.with_suffix(".pdf").is_file(), png.name


def test_save_refuses_a_figure_that_would_shrink_or_has_small_text(tmp_path):
    wide, _ = plt.subplots(figsize=(8, 3))
    with pytest.raises(ValueError, match="not 85 or 180 mm"):
        figures.save_figure(wide, tmp_path / "wide.png")
    small, ax = plt.subplots(figsize=(figures.ONE_COLUMN, 2))
    ax.text(0.5, 0.5, "tiny", fontsize=5)
    assert figures.small_text(small) == ["'tiny': 5 pt"]
    with pytest.raises(ValueError, match="below 7 pt"):
        figures.save_figure(small, tmp_path / "small.png")
    plt.close("all")


def test_png_and_pdf_are_byte_reproducible(tmp_path):
    def draw(path: Path) -> None:
        fig, ax = plt.subplots(figsize=(figures.ONE_COLUMN, 2))
        ax.plot([0, 1], [1, 0])
        ax.set_title("Pain")
        figures.save_figure(fig, path)

    draw(tmp_path / "a.png")
    draw(tmp_path / "b.png")
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()
    assert (tmp_path / "a.pdf").read_bytes() == (tmp_path / "b.pdf").read_bytes()
