"""What a reader sees, drawn from the protected tables: figures (`figures`, `pooling_figures`),
publication tables in HTML and Word (`publication`) and the one-page summary (`summary`).

May import: `cohort.core`, `cohort.io`, `cohort.models`, `cohort.analysis`, `cohort.disclosure`."""
