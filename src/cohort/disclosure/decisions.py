"""A data steward's decisions on the release request (`results/results.json`): approve or reject
per output, with the reviewer's comment (the file `disclosure.decisions` names). A rejected
output is not written, nor anything rendered or drawn from it (its HTML page, the figures drawn
from it, the summary when the summary reads it); the output-checking report, the release
request and provenance.json record every decision. The Snakefile reads the decisions before any
rule runs, so that a withheld file is no rule's output and Snakemake neither asks for it nor
keeps a stale copy's place."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cohort.disclosure.rules import EXEMPTIONS, FIGURE_TABLES, RENDERED_FROM
from cohort.disclosure.settings import DisclosureError

DECISIONS = ("approve", "reject")
# The files of results/ rendered from tables (RENDERED_FROM's names), by their paths.
RENDERED_PATHS = {
    "baseline.md": "tables/baseline.md",
    "baseline_vs_paper": "tables/baseline_vs_paper.csv",
    "summary.md": "summary.md",
    "site_bundle.json": "site_bundle.json",
}


@dataclass(frozen=True)
class Decision:
    """The steward's decision on one output (a path relative to results/)."""

    output: str
    decision: str  # approve | reject
    comment: str


@dataclass(frozen=True)
class ReleaseDecisions:
    """Every decision of one review, and the outputs withheld because of them (path -> why)."""

    source: str = ""
    reviewer: str = ""
    decisions: dict[str, Decision] = field(default_factory=dict)
    withheld: dict[str, str] = field(default_factory=dict)

    def record(self) -> dict[str, Any]:
        """Plain data: for Snakemake's params, provenance.json and the report."""
        return {
            "source": self.source,
            "reviewer": self.reviewer,
            "decisions": {
                o: {"decision": d.decision, "comment": d.comment} for o, d in self.decisions.items()
            },
            "withheld": dict(self.withheld),
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any] | None) -> ReleaseDecisions:
        if not record:
            return cls()
        decisions = {
            o: Decision(o, d["decision"], d.get("comment", ""))
            for o, d in record.get("decisions", {}).items()
        }
        return cls(
            record.get("source", ""), record.get("reviewer", ""), decisions,
            dict(record.get("withheld", {})),
        )  # fmt: skip

    def rejected(self) -> list[str]:
        return [o for o, d in self.decisions.items() if d.decision == "reject"]


def decidable_outputs(tables: Iterable[str], figures: Iterable[str]) -> list[str]:
    """The outputs a decision may name (relative to results/): each published table, the files
    rendered from them and each figure."""
    return [
        *(f"tables/{t}.csv" for t in tables),
        *RENDERED_PATHS.values(),
        *(f"figures/{f}.png" for f in figures),
    ]


def parse_decisions(data: Any, source: str, decidable: Iterable[str]) -> ReleaseDecisions:
    """The decisions of a steward's file (already read from YAML): `reviewer`, and `outputs`
    mapping each output to `{decision: approve|reject, comment: ...}`. Stops, naming the file and
    the output, on an unknown output, an unknown decision or a rejection without a comment."""
    decidable = list(decidable)
    if not isinstance(data, Mapping) or not isinstance(data.get("outputs"), Mapping):
        raise DisclosureError(
            f"{source}: a steward's decisions file needs `reviewer` and `outputs` (a mapping of "
            "each output, as results.json names it, to its decision and comment)"
        )
    reviewer = str(data.get("reviewer") or "").strip()
    if not reviewer:
        raise DisclosureError(f"{source}: `reviewer` is missing (who decided)")
    unknown_keys = sorted(set(data) - {"reviewer", "reviewed", "outputs"})
    if unknown_keys:
        raise DisclosureError(
            f"{source}: unknown key(s) {', '.join(unknown_keys)} (allowed: reviewer, reviewed, outputs)"
        )
    decisions: dict[str, Decision] = {}
    for output, entry in data["outputs"].items():
        where = f"{source}: outputs.{output}"
        if output in EXEMPTIONS:
            raise DisclosureError(
                f"{where}: the checker's own record ({EXEMPTIONS[output]}); it cannot be rejected"
            )
        if output not in decidable:
            raise DisclosureError(
                f"{where}: not an output of this study; decidable outputs: {', '.join(decidable)}"
            )
        if not isinstance(entry, Mapping) or entry.get("decision") not in DECISIONS:
            raise DisclosureError(f"{where}: decision must be one of {', '.join(DECISIONS)}")
        comment = str(entry.get("comment") or "").strip()
        if entry["decision"] == "reject" and not comment:
            raise DisclosureError(f"{where}: a rejection needs the reviewer's comment (why)")
        decisions[str(output)] = Decision(str(output), entry["decision"], comment)
    return ReleaseDecisions(source, reviewer, decisions, withheld_outputs(decisions))


def withheld_outputs(decisions: Mapping[str, Decision]) -> dict[str, str]:
    """Every file not to write (relative to results/) with why: each rejected output, and each
    file rendered or drawn from it (a table's HTML page, the figures drawn from it, the summary
    and Table 2 in Markdown when they read it; a figure's PDF with its PNG; a page's HTML with
    its Markdown)."""
    withheld: dict[str, str] = {}
    for output, decision in decisions.items():
        if decision.decision != "reject":
            continue
        withheld[output] = f"rejected: {decision.comment}"
        because = f"rendered from {output}, which was rejected"
        if output.startswith("tables/") and output.endswith(".csv"):
            table = output.removeprefix("tables/").removesuffix(".csv")
            withheld.setdefault(f"tables/html/{table}.html", because)
            for name, sources in RENDERED_FROM.items():
                if name in RENDERED_PATHS and table in sources:
                    withheld.setdefault(RENDERED_PATHS[name], because)
            for figure, sources in FIGURE_TABLES.items():
                if table in sources:
                    withheld.setdefault(
                        f"figures/{figure}.png", f"drawn from {output}, which was rejected"
                    )
    for path in list(withheld):
        if path.startswith("figures/") and path.endswith(".png"):
            withheld.setdefault(path.removesuffix(".png") + ".pdf", f"the PDF of {path}")
        if path == "summary.md":
            withheld.setdefault("summary.html", "the HTML of summary.md")
        if path.startswith("tables/") and path.endswith(".csv"):
            withheld.setdefault(
                "tables/html/" + path.removeprefix("tables/").removesuffix(".csv") + ".html",
                f"the HTML of {path}",
            )
    return withheld
