"""Rule logging: route log records and warnings to the rule's log file, and turn a user-facing
fault into one message and a non-zero exit instead of a traceback."""

from __future__ import annotations

import logging
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cohort.core.errors import CohortError

FORMAT = "%(levelname)s %(name)s: %(message)s"


@contextmanager
def rule_log(path: str | Path, rule: str) -> Iterator[logging.Logger]:
    """Log to `path` (no timestamps: logs of identical runs are identical)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, mode="w", encoding="utf-8")
    handler.setFormatter(logging.Formatter(FORMAT))
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(logging.INFO)
    logging.captureWarnings(True)
    warnings.simplefilter("default")
    logger = logging.getLogger(f"rule.{rule}")
    try:
        yield logger
    except CohortError as exc:
        logger.error("%s", exc)
        print(f"error in rule {rule}: {exc}", file=sys.stderr)
        sys.exit(1)
    finally:
        handler.flush()
