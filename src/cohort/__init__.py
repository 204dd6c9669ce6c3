"""cohort: reproducible analysis of a physiotherapist-led rehabilitation cohort."""

__version__ = "0.1.0"
