"""Standard architectures through every surface: ResNet-20 and keras.applications
backbones (weights None, nested, tiny input) under Grad-CAM, each method layer in a
model and in ds.map (after the crop + flip base augmentation), the metrics, the
callback, and .keras files.

The default run takes ResNet-20 through everything and MobileNetV3Small through
Grad-CAM, EDDA on both surfaces and a .keras file, with the in-model steps run
eagerly (tracing these models' gradients costs minutes on the shared CPU; the
traced step is the same code, covered on small models in test_methods.py);
`pytest -m slow` runs every method layer on both keras.applications backbones
(MobileNetV3Small, ResNet50V2) with traced steps."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_edda import callbacks, explainers, metrics, models
from keras_edda.crop_flip import CropFlip, crop_flip_map_fn
from keras_edda.data import method_map_fn
from keras_edda.methods import EDDA, Cutout, RandomOcclusion, SaliencyGuided

SHAPE = (32, 32, 3)
CLASSES = 3
METHODS = (EDDA, RandomOcclusion, SaliencyGuided, Cutout)
BACKBONES = ("mobilenet_v3_small", "resnet50_v2")


def batch(n=4, seed=0):
    images = np.random.default_rng(seed).uniform(size=(n, *SHAPE)).astype("float32")
    return images, np.arange(n) % CLASSES


def batch_norms(model):
    from keras_edda.explainers.capture import leaf_layers

    return [layer for _, layer in leaf_layers(model) if isinstance(layer, keras.layers.BatchNormalization)]


def test_resnet20_is_he_et_al_s_cifar_resnet():
    model = models.resnet20(SHAPE, 10)
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D) and layer.kernel_size == (3, 3)]
    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    assert len(convs) + len(dense) == 20  # 6n + 2 weighted layers, n = 3
    assert [c.filters for c in convs] == [16] * 7 + [32] * 6 + [64] * 6
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert 0.26e6 < trainable < 0.28e6  # "0.27M" in the paper's table 6
    assert model.output_shape == (None, 10) and dense[0].name == "classifier"
    assert all(norm.momentum == 0.9 for norm in batch_norms(model))
    assert models.build("resnet20", SHAPE, 10).count_params() == model.count_params()


def test_build_names_and_bad_names():
    assert models.build("cnn", SHAPE, 4).name == "small_cnn"
    assert models.build("resnet", SHAPE, 4).name == "small_resnet"
    net = models.build("MobileNetV3Small", SHAPE, 4, image_size=48)
    assert net.name == "mobilenetv3small" and net.get_layer("resize").output.shape[1:3] == (48, 48)
    backbone = net.layers[-1]
    assert isinstance(backbone, keras.Model) and backbone.input_shape[1:] == (48, 48, 3)
    assert all(norm.momentum == 0.9 for norm in batch_norms(net))
    assert not any(isinstance(layer, keras.layers.Rescaling) for layer in backbone.layers)
    assert models.is_known("resnet50_v2") and models.is_known("efficientnet_b0") and not models.is_known("resnet18")
    with pytest.raises(ValueError, match="model='resnet18'"):
        models.build("resnet18", SHAPE, 4)
    with pytest.raises(ValueError, match="image_size=64"):
        models.build("resnet20", SHAPE, 4, image_size=64)
    with pytest.raises(ValueError, match="refused input"):
        models.build("inception_v3", SHAPE, 4)  # needs 75x75 at least


def through_every_surface(classifier, methods, eager):
    """Grad-CAM, the metrics, each method in a model (after CropFlip) and in ds.map, a .keras file."""
    images, labels = batch()
    maps = explainers.GradCAM(classifier)(images)
    assert maps.shape == (4, 32, 32, 1) and np.isfinite(maps).all() and float(tf.reduce_min(maps)) >= 0.0
    score = metrics.get("deletion_auc", steps=4)(classifier, images, maps)
    assert np.isfinite(score).all()
    norms = 2 * len(batch_norms(classifier))
    assert norms > 0
    for cls in methods:
        layer = cls(classifier, seed=0)
        assert len(layer._moving_statistics()) == norms  # the nested backbone's too: the copies' own pass
        model = keras.Sequential([keras.Input(SHAPE), CropFlip(4, seed=0), layer, classifier])
        model.compile("sgd", "sparse_categorical_crossentropy", run_eagerly=eager, jit_compile=False)
        history = model.fit(images, labels, batch_size=4, epochs=1, verbose=0)
        assert np.isfinite(history.history["loss"]).all()
        assert set(layer.statistics()) == {f"{n}_{k}" for n in layer.copy_names for k in ("area", "used")} | {
            "copies_loss"}
        ds = (tf.data.Dataset.from_tensor_slices((images, keras.utils.to_categorical(labels, CLASSES))).batch(4)
              .map(crop_flip_map_fn(4, seed=0)).map(method_map_fn(cls(classifier, seed=0))))
        x, y, w = next(iter(ds))
        copies = len(layer.copy_names)
        assert x.shape == (4 * (1 + copies), *SHAPE) and y.shape == (4 * (1 + copies), CLASSES)
        assert np.isfinite(x).all() and np.isfinite(w).all()
    return model


def save_and_load(model, tmp_path):
    images, _ = batch()
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    augment, layer, classifier = loaded.layers
    assert isinstance(augment, CropFlip) and layer.get_classifier() is classifier
    np.testing.assert_allclose(loaded.predict(images, verbose=0), model.predict(images, verbose=0), rtol=1e-5,
                               atol=1e-6)


def test_resnet20_through_every_surface_and_a_keras_file(tmp_path):
    model = through_every_surface(models.resnet20(SHAPE, CLASSES), METHODS, eager=True)
    save_and_load(model, tmp_path)
    # The callback follows the alignment of the nested-free ResNet during fit.
    classifier = models.resnet20(SHAPE, CLASSES)
    classifier.compile("sgd", "sparse_categorical_crossentropy")
    images, labels = batch()
    monitor = callbacks.AlignmentCallback(images, metrics=(metrics.get("deletion_auc", steps=4),),
                                          max_samples=4, num_images=0)
    history = classifier.fit(images, labels, epochs=1, verbose=0, callbacks=[monitor])
    assert np.isfinite(history.history["val_alignment_grad_cam_deletion_auc"]).all()


def test_a_keras_applications_backbone_through_grad_cam_edda_and_a_keras_file(tmp_path):
    classifier = models.build(BACKBONES[0], SHAPE, CLASSES)
    model = through_every_surface(classifier, (EDDA,), eager=True)
    save_and_load(model, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("name", BACKBONES)
def test_keras_applications_backbones_with_every_method(name, tmp_path):
    classifier = models.build(name, SHAPE, CLASSES)
    model = through_every_surface(classifier, METHODS, eager=False)
    save_and_load(model, tmp_path)
    # The callback on the nested backbone.
    images, labels = batch()
    classifier.compile("sgd", "sparse_categorical_crossentropy")
    monitor = callbacks.AlignmentCallback(images, metrics=(metrics.get("deletion_auc", steps=4),),
                                          max_samples=4, num_images=0)
    history = classifier.fit(images, labels, epochs=1, verbose=0, callbacks=[monitor])
    assert np.isfinite(history.history["val_alignment_grad_cam_deletion_auc"]).all()
