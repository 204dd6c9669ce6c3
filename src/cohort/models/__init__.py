"""Estimation engines, with no knowledge of responders or of the study: design matrices
(`design`), logistic regression with Firth and profile-likelihood intervals (`logistic`), exact
REML of the random-intercept model (`mixed`) and of patients nested in clusters (`nested`),
random intercept and slope models (`individual_slopes`), two-stage meta-analysis
(`meta_analysis`), and the mixed models of the outcomes over time with their tables (`lmm`).

May import: `cohort.core`."""
