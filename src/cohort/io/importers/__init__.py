"""Importers: convert a published data set to the raw-extract contract. They only reshape and
rename; they never clean (cleaning, with its log, is the pipeline's job)."""
