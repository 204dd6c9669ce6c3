"""Command line: `python -m cohort synthesize ...` and `python -m cohort dictionary ...`."""

from cohort.workflow.cli import main

raise SystemExit(main())
