"""The package's layers (docs/architecture.md): each subpackage imports only from its own layer
and the layers below it, no module is longer than about 600 lines without a reason written at
its top, and every `cohort....` name the README and docs/ point a reader to exists."""

from __future__ import annotations

import ast
import importlib
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "cohort"
# Bottom to top: a layer may import its own modules and those of the layers before it.
LAYERS = ("core", "io", "models", "analysis", "disclosure", "publish", "workflow")
MAX_MODULE_LINES = 600
LONG_MODULE_REASON = "Longer than 600 lines because"


def layer_of(module: str) -> str | None:
    """'cohort.analysis.responders' -> 'analysis'; None for the package itself."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in LAYERS else None


def cohort_imports(path: Path) -> set[str]:
    """Every cohort module a file imports, inside functions too (as ast sees the whole file)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("cohort"))
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "cohort":
                found.update(f"cohort.{a.name}" for a in node.names)
            elif node.module.startswith("cohort."):
                found.add(node.module)
    return found


def modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_every_module_is_in_a_layer():
    loose = [
        p.relative_to(PACKAGE).as_posix()
        for p in modules()
        if p.parent == PACKAGE and p.name not in {"__init__.py", "__main__.py", "_moved.py"}
    ]
    assert loose == [], f"modules outside the layers {LAYERS}: {loose}"
    assert {p.name for p in PACKAGE.iterdir() if p.is_dir() and p.name != "__pycache__"} == set(
        LAYERS
    )


def test_no_layer_imports_from_a_layer_above_it():
    upward = []
    for path in modules():
        own = layer_of("cohort." + ".".join(path.relative_to(PACKAGE).with_suffix("").parts))
        if own is None:
            continue
        for module in cohort_imports(path):
            other = layer_of(module)
            if other is not None and LAYERS.index(other) > LAYERS.index(own):
                upward.append(f"{path.relative_to(PACKAGE)} ({own}) imports {module} ({other})")
    assert upward == []


def test_the_layer_check_sees_an_upward_import(tmp_path):
    """The check above could fail: an import inside a function of a lower layer is found."""
    path = tmp_path / "module.py"
    path.write_text(
        "def f():\n    from cohort.publish import figures\n    import cohort.io.cleaning\n"
    )
    assert cohort_imports(path) == {"cohort.publish", "cohort.io.cleaning"}
    assert LAYERS.index(layer_of("cohort.publish")) > LAYERS.index("analysis")


def test_each_layer_says_what_it_owns_and_may_import():
    for layer in LAYERS:
        doc = ast.get_docstring(ast.parse((PACKAGE / layer / "__init__.py").read_text()))
        assert doc and "May import" in doc, f"cohort.{layer}.__init__ says what it may import"
        allowed = re.findall(r"`cohort\.(\w+)`", doc.split("May import", 1)[1])
        below = LAYERS[: LAYERS.index(layer)]
        assert set(allowed) <= set(below), f"cohort.{layer} names a layer above it: {allowed}"


def test_no_module_over_600_lines_without_its_reason():
    long = []
    for path in modules():
        lines = path.read_text(encoding="utf-8").count("\n")
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
        if lines > MAX_MODULE_LINES and LONG_MODULE_REASON not in doc:
            long.append(f"{path.relative_to(PACKAGE)}: {lines} lines")
    assert long == []


DOCUMENTS = [
    "README.md",
    *sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "docs").glob("*.md")),
]
NAME = re.compile(r"(?<![\w./])cohort(?:\.\w+)+")
FLAT_LAYOUT_SECTION = "## Where the modules of the flat layout went"


@pytest.mark.parametrize("document", DOCUMENTS)
def test_every_name_the_documents_point_to_exists(document):
    """`cohort.analysis.responders.rate_interval` in the README is a module, or a name in one;
    a name a move left behind fails here."""
    text = (ROOT / document).read_text(encoding="utf-8")
    text = text.split(FLAT_LAYOUT_SECTION)[0]  # the old names, on purpose
    missing = []
    for name in sorted(set(NAME.findall(text))):
        parts = name.split(".")
        for depth in range(len(parts), 0, -1):  # the longest importable prefix
            try:
                obj = importlib.import_module(".".join(parts[:depth]))
            except ImportError:
                continue
            break
        else:
            missing.append(name)
            continue
        for attribute in parts[depth:]:
            if not hasattr(obj, attribute):
                missing.append(name)
                break
            obj = getattr(obj, attribute)
    assert missing == [], f"{document} names what does not exist: {missing}"


def test_a_module_of_the_flat_layout_still_imports_and_says_where_it_went():
    from cohort.analysis import responders

    sys.modules.pop("cohort.responders", None)  # imported by an earlier test: no second warning
    sys.modules.pop("cohort.stages.publish", None)
    with pytest.warns(
        DeprecationWarning, match="cohort.responders is now cohort.analysis.responders"
    ):
        old = importlib.import_module("cohort.responders")
    assert old is responders
    with pytest.warns(DeprecationWarning):
        stage = importlib.import_module("cohort.stages.publish")
    assert stage is importlib.import_module("cohort.workflow.stages.publish")


def test_a_split_module_of_the_flat_layout_names_where_its_parts_went():
    with pytest.raises(ModuleNotFoundError, match="cohort.models.design, cohort.models.mixed"):
        importlib.import_module("cohort.regression")


MAX_FUNCTION_LINES = 80


def test_no_function_over_80_lines():
    long = []
    for path in modules():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(PACKAGE)}:{node.lineno} {node.name}: {lines}")
    assert long == []
