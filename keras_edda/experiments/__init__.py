"""The comparison `keras-edda compare` runs, and the report it writes.

`protocol`: one run (train one method on one seed, score it once);
`report`: tables with per-seed values, paired statistics and verdicts,
markdown and plots, from a run's results.json.
"""

from keras_edda.experiments import protocol, report

__all__ = ["protocol", "report"]
