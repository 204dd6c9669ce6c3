"""Everything computed from the patient table: derived variables (`derivations`), Table 2 and
statistics helpers (`tables`), interventions, outcomes over time, responders and their rates,
clinical significance, multiple imputation, predictors of response, missing data, tipping points,
group comparisons, and the aggregates a site pools with (`pooling`).

May import: `cohort.core`, `cohort.models`."""
