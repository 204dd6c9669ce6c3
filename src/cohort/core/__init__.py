"""The foundation every layer stands on: the typed settings of each stage (`settings`), reading
and validating the config (`config`), the errors that stop a run with a message (`errors`),
DataFrame helpers (`frames`), distribution functions (`distributions`) and the labels that name
variables, levels and terms in every output (`labels`).

May import: nothing of cohort outside this subpackage."""
