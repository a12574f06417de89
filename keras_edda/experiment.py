"""Deprecated home of the compare application's helpers; they live in `keras_edda.experiments` now.

`keras_edda.experiment.ModelFactory` is `keras_edda.experiments.factory.ModelFactory`;
`write_results`, `read_results`, `config_difference`, `format_table` are in
`keras_edda.experiments.results`; `write_atomically` in `keras_edda._files`;
`explanation_rows`, `input_row` in `keras_edda.experiments.job`. Each old
name still works and warns once.
"""

import importlib
import warnings

_MOVED = {
    "ModelFactory": "keras_edda.experiments.factory",
    "write_results": "keras_edda.experiments.results",
    "read_results": "keras_edda.experiments.results",
    "config_difference": "keras_edda.experiments.results",
    "format_table": "keras_edda.experiments.results",
    "write_atomically": "keras_edda._files",
    "explanation_rows": "keras_edda.experiments.job",
    "input_row": "keras_edda.experiments.job",
}


def __getattr__(name):
    if name not in _MOVED:
        raise AttributeError(f"module 'keras_edda.experiment' has no attribute {name!r}")
    warnings.warn(f"keras_edda.experiment.{name} moved to {_MOVED[name]}.{name}; the old name will be removed",
                  DeprecationWarning, stacklevel=2)
    return getattr(importlib.import_module(_MOVED[name]), name)
