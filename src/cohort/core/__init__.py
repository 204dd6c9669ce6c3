"""The foundation every layer stands on: the typed settings of each stage (`settings`), reading
and validating the config (`config`), the errors that stop a run with a message (`errors`),
DataFrame helpers (`frames`), distribution functions (`distributions`), the labels that name
variables, levels and terms in every output (`labels`) and the cache of outputs by the content
they are made from (`cache`).

May import: nothing of cohort outside this subpackage."""
