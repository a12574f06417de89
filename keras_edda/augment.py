"""Where EDDA's pieces lived before the method family; kept for imports.

`keras_edda.methods.EDDA` holds the settings and the transform now.
"""

from keras_edda.methods.edda import EDDA, decreased_targets, salient_masks

__all__ = ["EDDA", "check_settings", "decreased_targets", "salient_masks"]


def check_settings(**settings):
    """Checks EDDA settings before any data or model is loaded.

    Builds the layer on a small probe classifier, so every setting goes
    through the one set of checks `EDDA` has.

    Raises:
        ValueError, TypeError: as `EDDA` would.
    """
    import keras

    probe = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(2, 3, name="conv"),
                              keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(2)])
    settings = dict(settings)
    if settings.get("warmup_epochs"):
        settings.setdefault("steps_per_epoch", 1)
    EDDA(probe, **settings)
