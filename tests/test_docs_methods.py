"""docs/methods.md: its Python examples run, on the tiny model they set up, and do what they say."""

import os
import re

import numpy as np

from keras_edda import explainers, methods
from keras_edda.ops import fills

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def doc_text():
    with open(os.path.join(ROOT, "docs", "methods.md")) as f:
        return f.read()


def python_blocks(text):
    return re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)


def test_the_table_names_every_method_of_the_family():
    text = doc_text()
    for name, cls in (("edda", methods.EDDA), ("random", methods.RandomOcclusion),
                      ("sgt", methods.SaliencyGuided), ("cutout", methods.Cutout)):
        assert methods.METHODS[name] is cls
        assert f'`{cls.__name__}` (`"{name}"`)' in text


def test_the_examples_run_in_order_and_do_what_they_say(tmp_path, monkeypatch):
    blocks = python_blocks(doc_text())
    assert len(blocks) >= 8
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "docs_methods"}
    try:
        for index, block in enumerate(blocks):
            exec(compile(block, f"docs/methods.md, python block {index}", "exec"), namespace)
        hide_cls = namespace["HideSalient"]
        assert methods.METHODS["hide_salient"] is hide_cls
        assert isinstance(namespace["sgt"].explainer, namespace["InputTimesGradient"])
        assert fills.get("grey")(np.zeros((1, 2, 2, 3), "float32"), None).numpy().tolist() == \
            np.full((1, 2, 2, 3), 0.5).tolist()
    finally:
        methods.METHODS.pop("hide_salient", None)
        explainers.EXPLAINERS.pop("input_x_gradient", None)
        fills.FILLS.pop("grey", None)

    # The phases by hand: 8 originals and 16 copies, soft targets, weights.
    assert namespace["images"].shape == (24, 16, 16, 3)
    assert namespace["labels"].shape == (24, 10)
    assert namespace["weights"].shape == (24,)
    assert namespace["maps"].shape == (4, 16, 16, 1)
    assert (tmp_path / "hide_salient.keras").exists() and (tmp_path / "dark_fill.keras").exists()

    # The worked example's copies hide exactly the top quarter of its saliency maps (ties to the
    # first pixel, as a stable NumPy sort ranks them), filled with the constant 0.0.
    x, y = namespace["x"][:4], namespace["y"][:4]
    layer = hide_cls(namespace["classifier"], fraction=0.25)
    transformation = layer.get_random_transformation({"images": x, "labels": y})
    saliency = transformation["maps"].numpy().reshape(4, -1)
    expected = np.zeros_like(saliency)
    for row, order in enumerate(np.argsort(-saliency, axis=1, kind="stable")):
        expected[row, order[:64]] = 1.0
    np.testing.assert_array_equal(transformation["copy_masks"].numpy().reshape(4, -1), expected)
    copies = layer.transform_images(x, transformation).numpy()[4:].reshape(4, -1, 3)
    np.testing.assert_array_equal(copies[expected == 1], 0.0)
    np.testing.assert_array_equal(copies[expected == 0], x.reshape(4, -1, 3)[expected == 0])
    np.testing.assert_allclose(layer.transform_labels(y, transformation).numpy()[4:], 0.1, rtol=1e-6)
