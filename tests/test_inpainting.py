"""The learned inpainter: masks, training, the Inpainter fill, SP-G, CLI."""

import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import small_cnn

from keras_edda import cli, datasets
from keras_edda.explainers import Occlusion
from keras_edda.inpainting import Inpainter, build_inpainter, random_masks, square_holes, train_inpainter
from keras_edda.ops import fills

SIZE = 16


def hole_mse(images, masks, fill):
    filled = fills.fill_masked(tf.constant(images), tf.constant(masks), fill)
    return float(tf.reduce_sum(tf.square(filled - images) * masks) / masks.sum())


@pytest.fixture(scope="module")
def digits():
    return datasets.load_digits(image_size=SIZE)


@pytest.fixture(scope="module")
def network():
    keras.utils.set_random_seed(0)
    return build_inpainter((SIZE, SIZE, 1), filters=8)


def test_random_masks_cover_the_asked_share_with_boxes_and_strokes():
    masks = random_masks(400, 24, 20, min_area=0.05, max_area=0.6, seed=3).numpy()
    area = masks.mean(axis=(1, 2, 3))
    assert masks.shape == (400, 24, 20, 1)
    assert set(np.unique(masks)) == {0.0, 1.0}
    assert area.min() >= 0.05 - 1 / 480 and area.max() <= 0.6 + 1 / 480
    assert area.max() - area.min() > 0.4
    # A box (nearly) fills its bounding rectangle; a stroke leaves much of its rectangle empty.
    rows, cols = masks[..., 0].any(axis=2), masks[..., 0].any(axis=1)
    fill_of_box = masks.sum(axis=(1, 2, 3)) / (rows.sum(1) * cols.sum(1))
    assert (fill_of_box > 0.9).mean() > 0.25 and (fill_of_box < 0.7).mean() > 0.2
    again = random_masks(400, 24, 20, seed=3).numpy()
    np.testing.assert_array_equal(masks, again)


def test_square_holes_are_one_square_of_the_side_inside_the_image():
    holes = square_holes(50, 12, 9, 4, seed=3)
    assert holes.shape == (50, 12, 9, 1) and holes.dtype == np.float32
    for hole in holes[..., 0]:
        rows, cols = np.nonzero(hole)
        assert len(rows) == 16 and np.ptp(rows) == 3 and np.ptp(cols) == 3
    # Every place is reachable: top rows 0..8 and left columns 0..5 all occur.
    tops = {int(np.nonzero(h[..., 0])[0].min()) for h in holes}
    lefts = {int(np.nonzero(h[..., 0])[1].min()) for h in holes}
    assert tops == set(range(9)) and lefts == set(range(6))
    np.testing.assert_array_equal(holes, square_holes(50, 12, 9, 4, seed=3))
    assert not np.array_equal(holes, square_holes(50, 12, 9, 4, seed=4))
    with pytest.raises(ValueError, match=r"side.*Received: side=10"):
        square_holes(2, 12, 9, 10)
    with pytest.raises(ValueError, match="Received: num_masks=0"):
        square_holes(0, 12, 9, 4)


def test_short_training_beats_diffusion_and_mean_fill_on_held_out_boxes(digits):
    (x_train, _), (x_test, _) = digits
    network = train_inpainter(x_train, epochs=4, batch_size=32, filters=8, verbose=0)
    masks = square_holes(len(x_test), SIZE, SIZE, SIZE // 3)
    learned = hole_mse(x_test, masks, Inpainter(network))
    assert learned < hole_mse(x_test, masks, fills.get("inpaint")) < hole_mse(x_test, masks, fills.get("mean"))


@pytest.mark.slow
def test_larger_inpainter_beats_diffusion_by_a_margin(digits):
    (x_train, _), (x_test, _) = digits
    network = train_inpainter(x_train, epochs=4, batch_size=32, filters=16, verbose=0)
    masks = square_holes(len(x_test), SIZE, SIZE, SIZE // 3)
    learned = hole_mse(x_test, masks, Inpainter(network))
    diffusion = hole_mse(x_test, masks, fills.get("inpaint"))
    mean = hole_mse(x_test, masks, fills.get("mean"))
    assert diffusion < mean
    assert learned < 0.85 * diffusion, (learned, diffusion, mean)


def test_inpainter_composites_and_keeps_visible_pixels(digits, network):
    _, (x_test, _) = digits
    images = x_test[:8]
    masks = square_holes(8, SIZE, SIZE, 6, seed=1)
    out = Inpainter(network)(images, masks).numpy()
    np.testing.assert_array_equal(out * (1 - masks), images * (1 - masks))
    generated = network([images, masks], training=False).numpy()
    np.testing.assert_allclose(out * masks, generated * masks, atol=1e-6)
    # What is under the hole never reaches the result.
    scrambled = np.where(masks > 0, np.random.default_rng(0).uniform(size=images.shape), images).astype("float32")
    np.testing.assert_allclose(Inpainter(network)(scrambled, masks).numpy(), out, atol=1e-5)
    # Chunked calls give the same result, also inside tf.function and channels_first.
    chunked = tf.function(Inpainter(network, batch_size=3).__call__)(tf.constant(images), tf.constant(masks))
    np.testing.assert_allclose(chunked.numpy(), out, atol=1e-5)
    first = Inpainter(network, data_format="channels_first")(
        np.transpose(images, (0, 3, 1, 2)), np.transpose(masks, (0, 3, 1, 2)))
    np.testing.assert_allclose(np.transpose(first.numpy(), (0, 2, 3, 1)), out, atol=1e-5)


def test_fill_by_path_and_model_holding_the_fill_round_trip_in_a_new_process(tmp_path, digits, network):
    _, (x_test, _) = digits
    images, masks = x_test[:6], square_holes(6, SIZE, SIZE, 5, seed=2)
    network_path = str(tmp_path / "inpainter.keras")
    network.save(network_path)
    by_path = fills.get(f"inpainter:{network_path}")
    np.testing.assert_allclose(by_path(images, masks).numpy(), Inpainter(network)(images, masks).numpy(), atol=1e-6)

    image_in = keras.Input((SIZE, SIZE, 1))
    mask_in = keras.Input((SIZE, SIZE, 1))
    filled = Inpainter(network, batch_size=4)(image_in, mask_in)
    classifier = small_cnn((SIZE, SIZE, 1), 3)
    holder = keras.Model([image_in, mask_in], [filled, classifier(filled)])
    expected = [t.numpy() for t in holder([images, masks])]
    model_path = str(tmp_path / "holder.keras")
    holder.save(model_path)
    np.save(tmp_path / "images.npy", images)
    np.save(tmp_path / "masks.npy", masks)
    script = textwrap.dedent(f"""
        import numpy as np, keras
        import keras_edda.inpainting
        model = keras.saving.load_model({model_path!r})
        filled, scores = model([np.load({str(tmp_path / 'images.npy')!r}), np.load({str(tmp_path / 'masks.npy')!r})])
        np.save({str(tmp_path / 'filled.npy')!r}, filled.numpy())
        np.save({str(tmp_path / 'scores.npy')!r}, scores.numpy())
    """)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
    subprocess.run([sys.executable, "-c", script], check=True, env=env, timeout=300)
    np.testing.assert_array_equal(np.load(tmp_path / "filled.npy"), expected[0])
    np.testing.assert_array_equal(np.load(tmp_path / "scores.npy"), expected[1])


def test_sp_g_patch_size_and_stride_are_independent_and_chunking_does_not_change_maps(digits):
    _, (x_test, _) = digits
    classifier = small_cnn((SIZE, SIZE, 1), 10)
    fill = Inpainter(build_inpainter((SIZE, SIZE, 1), filters=4))
    images = x_test[:2]
    # 8 x 8 positions of a 6-pixel patch every 2 pixels; batch_size=None: all 128 copies in one call.
    maps = Occlusion(classifier, patch_size=6, stride=2, fill=fill, batch_size=None)(images, targets=1).numpy()
    chunked = Occlusion(classifier, patch_size=6, stride=2, fill=fill, batch_size=50)(images, targets=1).numpy()
    np.testing.assert_allclose(chunked, maps, atol=1e-5)
    tiled = Occlusion(classifier, patch_size=6, stride=6, fill=fill)(images, targets=1).numpy()
    assert not np.allclose(tiled, maps)
    # One patch position against a direct evaluation of the inpainted copy.
    patch = np.zeros((1, SIZE, SIZE, 1), "float32")
    patch[:, :6, :6] = 1.0
    occluded = fill(images[:1], patch)
    logits_tap = Occlusion(classifier, patch_size=6, fill=fill)
    drop = logits_tap.scores(images[:1])[0][0, 1] - logits_tap.scores(occluded)[0][0, 1]
    only_first = maps[0, 0, 0, 0]  # pixel (0, 0) is covered only by the patch at (0, 0)
    np.testing.assert_allclose(only_first, float(drop), atol=1e-4)


def test_bad_inpainting_models_and_images_are_refused():
    with pytest.raises(ValueError, match="two inputs"):
        Inpainter(small_cnn((SIZE, SIZE, 1), 3))
    image_in, mask_in = keras.Input((SIZE, SIZE, 1)), keras.Input((SIZE, SIZE, 3))
    with pytest.raises(ValueError, match="two inputs"):
        Inpainter(keras.Model([image_in, mask_in], keras.layers.Concatenate()([image_in, mask_in])))
    with pytest.raises(TypeError, match="model"):
        Inpainter("not a model")
    fill = Inpainter(build_inpainter((SIZE, SIZE, 1), filters=4))
    with pytest.raises(ValueError, match="images.shape"):
        fill(np.zeros((1, 8, 8, 1), "float32"), np.zeros((1, 8, 8, 1), "float32"))
    with pytest.raises(ValueError, match="divisible"):
        build_inpainter((18, 18, 1))
    with pytest.raises(ValueError, match="No inpainter model file"):
        fills.get("inpainter:/nonexistent/x.keras")
    with pytest.raises(ValueError, match="epochs=0"):
        train_inpainter(np.zeros((4, SIZE, SIZE, 1), "float32"), epochs=0)


def test_cli_refuses_to_overwrite_and_to_write_other_than_keras(tmp_path, capsys):
    out = tmp_path / "inp.keras"
    out.write_text("precious")
    assert cli.main(["train-inpainter", "--out", str(out), "--epochs", "1"]) == 2
    assert "--overwrite" in capsys.readouterr().err and out.read_text() == "precious"
    assert cli.main(["train-inpainter", "--out", str(tmp_path / "inp.h5")]) == 2
    assert ".keras" in capsys.readouterr().err


@pytest.mark.slow
def test_cli_trains_and_replaces_the_file_atomically(tmp_path, capsys):
    out = tmp_path / "inp.keras"
    out.write_text("precious")
    assert cli.main(["train-inpainter", "--out", str(out), "--epochs", "1", "--image-size", "16",
                     "--max-train", "64", "--filters", "4", "--verbose", "0", "--overwrite"]) == 0
    assert "hole MSE" in capsys.readouterr().out
    assert os.listdir(tmp_path) == ["inp.keras"]
    fill = fills.get(f"inpainter:{out}")
    assert fill.image_shape == (16, 16, 1)


def test_a_method_layer_with_the_inpainter_fill_saves_and_loads_it_with_its_weights(tmp_path, network):
    from keras_edda.methods import Cutout

    classifier = small_cnn((SIZE, SIZE, 1), 3)
    fill = Inpainter(network)
    model = keras.Sequential([keras.Input((SIZE, SIZE, 1)), Cutout(classifier, fill=fill, seed=0), classifier])
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras").layers[0].fill
    assert isinstance(loaded, Inpainter) and loaded is not fill
    images = np.random.default_rng(0).uniform(size=(4, SIZE, SIZE, 1)).astype("float32")
    masks = square_holes(4, SIZE, SIZE, 6)
    np.testing.assert_array_equal(loaded(images, masks).numpy(), fill(images, masks).numpy())


def test_metrics_take_the_inpainter_as_their_fill(network):
    from keras_edda.metrics import DeletionAUC

    classifier = small_cnn((SIZE, SIZE, 1), 3)
    images = np.random.default_rng(1).uniform(size=(3, SIZE, SIZE, 1)).astype("float32")
    maps = np.random.default_rng(2).uniform(size=(3, SIZE, SIZE, 1)).astype("float32")
    fill = Inpainter(network)
    curves = DeletionAUC(steps=4, fill=fill).curve(classifier, images, maps).numpy()
    # The last step deletes every pixel: the whole image is the inpainter's guess from nothing.
    everything = fill(images, np.ones_like(maps))
    expected = keras.ops.take_along_axis(classifier(everything), np.argmax(classifier(images), -1)[:, None], 1)
    np.testing.assert_allclose(curves[:, -1], np.asarray(expected)[:, 0], rtol=1e-4, atol=1e-6)


def _replace_with_other_weights(path):
    other = build_inpainter((SIZE, SIZE, 1), filters=4)
    other.set_weights([w + 0.5 for w in other.get_weights()])
    other.save(path)


def test_a_saved_inpainter_path_is_pinned_to_its_weights(tmp_path):
    """Issue 25 item 5: a layer saved with fill="inpainter:PATH" stored only the path and silently used
    another inpainter when the file was replaced."""
    from keras_edda.methods import Cutout

    path = str(tmp_path / "inpainter.keras")
    first = build_inpainter((SIZE, SIZE, 1), filters=4)
    first.save(path)
    fill = fills.get(f"inpainter:{path}")
    digest = Inpainter(first).weights_digest()
    assert fill.config_name == f"inpainter:{path}#sha256={digest}"
    # The pinned name finds the same weights; saving the same network again keeps the digest.
    first.save(path)
    again = fills.get(fill.config_name)
    images = np.random.default_rng(0).uniform(size=(2, SIZE, SIZE, 1)).astype("float32")
    masks = square_holes(2, SIZE, SIZE, 6, seed=1)
    np.testing.assert_array_equal(again(images, masks).numpy(), fill(images, masks).numpy())

    classifier = small_cnn((SIZE, SIZE, 1), 3)
    model = keras.Sequential([keras.Input((SIZE, SIZE, 1)), Cutout(classifier, fill=f"inpainter:{path}", seed=0),
                              classifier])
    model.save(tmp_path / "m.keras")
    occlusion = Occlusion(classifier, patch_size=4, fill=f"inpainter:{path}")
    config = occlusion.get_config()
    assert config["fill"] == fill.config_name
    loaded = keras.saving.load_model(tmp_path / "m.keras")  # the file is unchanged: loads
    assert loaded.layers[0].fill == fill.config_name

    _replace_with_other_weights(path)
    with pytest.raises(ValueError, match="not the one this fill was saved with"):
        keras.saving.load_model(tmp_path / "m.keras")
    with pytest.raises(ValueError, match="not the one this fill was saved with"):
        Occlusion(classifier, **config)
    os.remove(path)
    with pytest.raises(ValueError, match="No inpainter model file"):
        Occlusion(classifier, **config)


def test_ops_never_imports_inpainting_which_registers_its_fill():
    """Issue 21's rule: ops does not import inpainting; the inpainter's fill is a registry entry."""
    import ast
    import pathlib

    import keras_edda.ops

    for source in pathlib.Path(keras_edda.ops.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            assert not any(name.startswith("keras_edda.inpainting") for name in names), source.name
    from keras_edda.inpainting import fill as fill_module

    assert fills.SCHEMES["inpainter"] is fill_module._load_scheme
    with pytest.raises(ValueError, match="fill scheme 'painter'.*Received: fill='painter:x.keras'"):
        fills.get("painter:x.keras")
    # Any module can add a scheme the same way.
    fills.register_scheme("test_grey", lambda level, **kwargs: fills.constant_fill(float(level)))
    try:
        filled = fills.fill_masked(np.zeros((1, 4, 4, 1), "float32"), np.ones((1, 4, 4, 1), "float32"),
                                   fills.get("test_grey:0.25"))
        np.testing.assert_allclose(filled.numpy(), 0.25)
        assert fills.config_name("test_grey:0.25") == "test_grey:0.25"
    finally:
        del fills.SCHEMES["test_grey"]
