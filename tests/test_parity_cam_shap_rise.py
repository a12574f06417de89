"""Grad-CAM++, Score-CAM, RISE, Kernel SHAP and MuFidelity against references outside the project:
tf-keras-vis, scikit-image's resize (the RISE authors' mask code), the shap package and Quantus."""

import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from conftest import random_images, small_cnn

from keras_edda import explainers, metrics
from keras_edda.explainers.superpixels import slic_segments


def normalized(maps):
    maps = np.asarray(maps, np.float64).reshape(len(maps), -1)
    return maps / np.maximum(np.abs(maps).max(axis=1, keepdims=True), 1e-12)


def correlations(a, b):
    a, b = normalized(a), normalized(b)
    return np.array([np.corrcoef(x, y)[0, 1] for x, y in zip(a, b)])


def pooled_cnn():
    """Conv-Pool-Conv-GAP-Dense with logits: the CAM layer (8 x 8) is coarser than the input (16 x 16)."""
    import keras

    return keras.Sequential([
        keras.Input((16, 16, 3)),
        keras.layers.Conv2D(8, 3, padding="same", activation="relu"),
        keras.layers.MaxPooling2D(),
        keras.layers.Conv2D(12, 3, padding="same", activation="relu", name="cam"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(5, name="head"),
    ])


def test_grad_cam_pp_matches_tf_keras_vis():
    gradcam_plus_plus = pytest.importorskip("tf_keras_vis.gradcam_plus_plus")
    from tf_keras_vis.utils.scores import CategoricalScore

    model = pooled_cnn()
    images = random_images(6)
    targets = [0, 1, 2, 3, 4, 0]
    theirs = gradcam_plus_plus.GradcamPlusPlus(model, clone=True)(
        CategoricalScore(targets), images, penultimate_layer="cam", expand_cam=False, normalize_cam=False)
    # Their layer-resolution map upsampled as ours (their own zoom aligns corners; the definitions agree).
    theirs = tf.image.resize(np.asarray(theirs)[..., None], (16, 16), method="bilinear").numpy()
    ours = explainers.GradCAMPlusPlus(model, layer="cam")(images, targets).numpy()
    assert correlations(ours, theirs).min() >= 0.999
    # They keep the paper's common factor exp(score) of each image; ours leaves it out.
    np.testing.assert_allclose(normalized(ours), normalized(theirs), atol=1e-4)


def test_score_cam_matches_tf_keras_vis():
    scorecam = pytest.importorskip("tf_keras_vis.scorecam")
    from tf_keras_vis.utils.scores import CategoricalScore

    logits_model = pooled_cnn()
    images = random_images(4)
    targets = [0, 1, 2, 3]
    # tf-keras-vis weighs each channel by softmax(logits)[class] of the masked image (the paper's choice):
    # ours on the same model with a softmax head and use_logits=False explains that probability.
    import keras

    softmax_model = keras.Sequential([logits_model, keras.layers.Softmax()])
    theirs = scorecam.Scorecam(logits_model, clone=True)(
        CategoricalScore(targets), images, penultimate_layer="cam", expand_cam=False, normalize_cam=False,
        max_N=-1)
    theirs = tf.image.resize(np.asarray(theirs)[..., None], (16, 16), method="bilinear").numpy()
    ours = explainers.ScoreCAM(softmax_model, layer="cam", use_logits=False)(images, targets).numpy()
    # Their masks upsample the channels with scipy's corner-aligned zoom, ours with TensorFlow's half-pixel
    # bilinear resize: the channel weights differ slightly, the maps not in substance.
    assert correlations(ours, theirs).min() >= 0.99


def authors_rise_masks(cells, shifts, height, width):
    """The RISE authors' `generate_masks` (github.com/eclique/RISE) on given grids and shifts, with
    scikit-image's resize as in their code."""
    from skimage.transform import resize

    rows = cells.shape[1]
    cell_size = int(np.ceil(height / rows))
    up_size = ((rows + 1) * cell_size, (rows + 1) * cell_size)
    masks = np.empty((len(cells), height, width))
    for i, (grid, (x, y)) in enumerate(zip(cells, shifts)):
        masks[i] = resize(grid, up_size, order=1, mode="reflect", anti_aliasing=False)[x:x + height, y:y + width]
    return masks


def test_rise_matches_the_authors_algorithm_on_shared_masks():
    pytest.importorskip("skimage")
    model = small_cnn(num_classes=5, activation="softmax")
    images = random_images(3)
    explainer = explainers.Rise(model, num_masks=64, grid_size=4, p=0.4, seed=3, use_logits=False, batch_size=50)
    cells, draws = (t.numpy() for t in explainer.mask_parameters())
    cell_size = int(np.ceil(16 / 4))
    shifts = np.floor(draws * cell_size).astype(int)
    reference_masks = authors_rise_masks(cells, shifts, 16, 16)
    np.testing.assert_allclose(explainer.masks(cells, draws, 16, 16).numpy(), reference_masks, atol=1e-5)
    # Their explanation: sum_i f(x * M_i)[class] M_i / N / p1.
    targets = np.array([1, 2, 3])
    expected = []
    for image, target in zip(images, targets):
        scores = model.predict(image[None] * reference_masks[..., None].astype("float32"), verbose=0)[:, target]
        expected.append(np.tensordot(scores, reference_masks, axes=1) / 64 / 0.4)
    ours = explainer(images, targets).numpy()[..., 0]
    np.testing.assert_allclose(ours, np.array(expected), rtol=1e-4, atol=1e-6)


XPLIQUE = pathlib.Path(os.environ.get("KERAS_EDDA_XPLIQUE",
                                     pathlib.Path(__file__).resolve().parents[1] / ".venv" / "xplique"))


class RiseWithGivenMasks(explainers.Rise):
    """keras_edda's RISE on final (upsampled, shifted) masks given from outside."""

    def __init__(self, model, given_masks, **kwargs):
        self.given_masks = tf.constant(given_masks, tf.float32)
        super().__init__(model, num_masks=len(given_masks), **kwargs)

    def mask_parameters(self):
        return self.given_masks, tf.zeros([self.num_masks, 2])

    def masks(self, cells, draws, height, width):
        return cells


@pytest.mark.skipif(not (XPLIQUE / "xplique").is_dir(),
                    reason=f"xplique is not installed in {XPLIQUE} (make test installs it there)")
def test_rise_matches_xplique_on_shared_masks(tmp_path):
    # xplique pins tensorflow <= 2.20, so it runs in its own process from its own folder. Its masks differ
    # from the authors' (tf.image.resize without mirrored borders, one crop offset per chunk) and it divides
    # by the sum of the masks at each pixel instead of num_masks * p; on the masks it drew, keras_edda's map
    # times num_masks * p / (sum_i M_i + 1e-4) must equal xplique's.
    model = small_cnn(num_classes=5, activation="softmax")
    images, targets = random_images(3), np.array([1, 4, 0])
    model.save(tmp_path / "model.keras")
    np.savez(tmp_path / "inputs.npz", images=images, targets=targets)
    num_masks, grid_size, p = 96, 4, 0.4
    environment = dict(os.environ, PYTHONPATH=str(XPLIQUE), TF_CPP_MIN_LOG_LEVEL="3")
    subprocess.run([sys.executable, str(pathlib.Path(__file__).with_name("xplique_rise_reference.py")),
                    str(tmp_path / "model.keras"), str(tmp_path / "inputs.npz"), str(tmp_path / "xplique.npz"),
                    str(num_masks), str(grid_size), str(p)],
                   check=True, env=environment, stdin=subprocess.DEVNULL, timeout=300)
    theirs = np.load(tmp_path / "xplique.npz")
    assert theirs["masks"].shape == (3, num_masks, 16, 16)
    for index in range(3):
        masks = theirs["masks"][index]
        explainer = RiseWithGivenMasks(model, masks, p=p, use_logits=False, batch_size=40)
        ours = explainer(images[index:index + 1], int(targets[index])).numpy()[0, ..., 0]
        rescaled = ours * num_masks * p / (masks.sum(axis=0) + 1e-4)
        np.testing.assert_allclose(rescaled, theirs["maps"][index], rtol=1e-4, atol=1e-6)


def grid_features_model(model, images, segments, target):
    """The shap package's view: f(z) for coalitions z (M, F), superpixels off filled with 0."""
    def f(z):
        visible = z[:, segments].astype("float32")  # (M, H, W)
        return model.predict(images[None] * visible[..., None], verbose=0, batch_size=1024)[:, target]
    return f


def per_segment(maps, segments):
    return np.array([maps[segments == k][0] for k in range(segments.max() + 1)])


def test_kernel_shap_matches_shap_with_every_coalition():
    shap = pytest.importorskip("shap")
    model = small_cnn(num_classes=5, activation=None)
    images = random_images(2)
    explainer = explainers.KernelShap(model, num_samples=510, grid_size=3, batch_size=256)
    assert explainer.enumerates
    ours = explainer(images, 2).numpy()[..., 0]
    segments = explainer.superpixels.segment(tf.constant(images)).numpy()
    for index in range(2):
        reference = shap.KernelExplainer(grid_features_model(model, images[index], segments[index], 2),
                                         np.zeros((1, 9)))
        theirs = reference.shap_values(np.ones((1, 9)), nsamples=510, l1_reg=False, silent=True)[0]
        np.testing.assert_allclose(per_segment(ours[index], segments[index]), theirs, rtol=1e-2,
                                   atol=1e-2 * np.abs(theirs).max())


class KernelShapWithGivenCoalitions(explainers.KernelShap):
    """Kernel SHAP on coalitions and weights given from outside (the shap package's)."""

    def __init__(self, model, coalitions, weights, **kwargs):
        self.given = (tf.constant(coalitions, tf.float32), tf.constant(weights, tf.float32))
        super().__init__(model, num_samples=len(coalitions), **kwargs)

    def coalitions(self, num_images, num_features, present):
        shape = tf.stack([num_images, self.num_samples, num_features])
        return (tf.broadcast_to(self.given[0], shape), tf.broadcast_to(self.given[1], shape[:2]),
                self.num_samples)


def test_kernel_shap_matches_shap_on_the_same_slic_segments_and_samples():
    shap = pytest.importorskip("shap")
    pytest.importorskip("skimage")
    model = small_cnn((32, 32, 3), 5, activation=None)
    rng = np.random.default_rng(0)
    image = tf.image.resize(rng.uniform(size=(1, 8, 8, 3)).astype("float32"), (32, 32)).numpy()
    segments = slic_segments(image, n_segments=20).numpy()
    num_features = segments.max() + 1
    assert num_features > 10  # sampled, not enumerated, by shap
    np.random.seed(0)
    reference = shap.KernelExplainer(grid_features_model(model, image[0], segments[0], 1),
                                     np.zeros((1, num_features)))
    theirs = reference.shap_values(np.ones((1, num_features)), nsamples=300, l1_reg=False, silent=True)[0]
    assert reference.nsamplesRun < 2 ** num_features - 2
    ours = KernelShapWithGivenCoalitions(
        model, reference.maskMatrix, reference.kernelWeights, segments=lambda x: tf.constant(segments),
        batch_size=128)(image, 1).numpy()[0, ..., 0]
    np.testing.assert_allclose(per_segment(ours, segments[0]), theirs, rtol=1e-2,
                               atol=1e-2 * np.abs(theirs).max())


class MuFidelityWithGivenSubsets(metrics.MuFidelity):
    """MuFidelity on per-image element subsets given from outside (Quantus')."""

    def __init__(self, masks, **kwargs):
        self.given = tf.constant(masks, tf.float32)  # (N, S, H, W, C), 1.0 on removed elements
        super().__init__(num_subsets=masks.shape[1], grid_size=None, **kwargs)

    def subset_masks(self, cells, subset_index, image_index, height, width):
        return tf.gather_nd(self.given, tf.stack([image_index, subset_index], axis=-1))


def test_mu_fidelity_matches_quantus_faithfulness_correlation_on_the_same_subsets():
    quantus = pytest.importorskip("quantus")
    model = small_cnn(num_classes=5, activation="softmax")
    images = random_images(4)
    maps = explainers.Occlusion(model, patch_size=4)(images, [0, 1, 2, 3]).numpy()
    recorded = []

    def recording_perturb(arr, indices, **kwargs):
        recorded.append(indices.copy())
        out = arr.copy()
        np.put_along_axis(out, indices, 0.0, axis=1)
        return out

    np.random.seed(1)
    metric = quantus.FaithfulnessCorrelation(
        nr_runs=40, subset_size=96, perturb_func=recording_perturb, abs=False, normalise=False,
        return_aggregate=False, disable_warnings=True)
    # Quantus works channels-first inside: its subsets index the (N, C, H, W) elements.
    theirs = metric(model=model, x_batch=images, y_batch=np.array([0, 1, 2, 3]),
                    a_batch=np.transpose(maps, (0, 3, 1, 2)), channel_first=False, softmax=True)
    masks = np.zeros((4, 40, 3 * 16 * 16), "float32")
    for run, indices in enumerate(recorded):
        np.put_along_axis(masks[:, run], indices, 1.0, axis=1)
    masks = np.transpose(masks.reshape(4, 40, 3, 16, 16), (0, 1, 3, 4, 2))
    ours = MuFidelityWithGivenSubsets(masks)(model, images, maps, [0, 1, 2, 3]).numpy()
    np.testing.assert_allclose(ours, theirs, atol=1e-4)
