"""What reads and writes files: the data contract (`contract`), cleaning a raw extract with its
log (`cleaning`), identifiers and safe output paths (`privacy`), importers of published data sets
(`importers`), drafting a study file from an extract (`scaffold`), the synthetic extract
(`synthetic`) and the CSV tables with their notes (`outputs`).

May import: `cohort.core`."""
