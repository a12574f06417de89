"""Cost of Right for the Right Reasons in training, in one process.

    python benchmarks/rrr.py [--batch 64] [--size 32]

Ours: a training step of `RightForRightReasons(classifier).wrap()` on
`{"images", "masks"}` (the penalty differentiates the model's own training
pass; through Keras' `add_loss`). Ideal: the hand-written step of the
method, one forward pass that gives both the cross-entropy and the input
gradient (double backprop: the backward to the input, and the backward
through it). The layer in front of the classifier in a model of one's own
(a pass of its own for the penalty) is timed too.
Also a plain training step on N for scale. The functions are
timed in turns (`interleaved_medians`). Prints times and ratios.
"""

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(__file__))

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402
from _timing import device_name, interleaved_medians  # noqa: E402

from keras_edda import models  # noqa: E402
from keras_edda.methods import RightForRightReasons  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args()
    keras.utils.set_random_seed(0)
    shape = (args.size, args.size, 3)
    x = tf.random.uniform((args.batch, *shape))
    y = tf.random.uniform((args.batch,), 0, 10, tf.int32)
    masks = tf.cast(tf.random.uniform((args.batch, args.size, args.size, 1)) < 0.5, tf.float32)
    loss_fn = keras.losses.SparseCategoricalCrossentropy()

    classifier = models.small_cnn(shape, 10)
    model = RightForRightReasons(classifier, weight=10.0).wrap()
    optimizer = keras.optimizers.Adam()

    @tf.function
    def ours(images, labels, annotation):
        with tf.GradientTape() as tape:
            loss = loss_fn(labels, model({"images": images, "masks": annotation}, training=True))
            loss += tf.add_n(model.losses)
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply(grads, model.trainable_variables)
        return loss

    layered_classifier = models.small_cnn(shape, 10)
    layer = RightForRightReasons(layered_classifier, weight=10.0)
    inputs = {"images": keras.Input(shape, name="images"), "masks": keras.Input((args.size, args.size, 1),
                                                                                name="masks")}
    layered = keras.Model(inputs, layered_classifier(layer(inputs)))
    layered_optimizer = keras.optimizers.Adam()

    @tf.function
    def layered_step(images, labels, annotation):
        with tf.GradientTape() as tape:
            loss = loss_fn(labels, layered({"images": images, "masks": annotation}, training=True))
            loss += tf.add_n(layered.losses)
        grads = tape.gradient(loss, layered.trainable_variables)
        layered_optimizer.apply(grads, layered.trainable_variables)
        return loss

    reference = models.small_cnn(shape, 10)
    reference_optimizer = keras.optimizers.Adam()

    @tf.function
    def ideal(images, labels, annotation):
        with tf.GradientTape() as tape:
            with tf.GradientTape() as inner:
                inner.watch(images)
                probabilities = reference(images, training=True)
                total = tf.reduce_sum(tf.math.log(tf.maximum(probabilities, 1e-7)))
            gradients = inner.gradient(total, images)
            penalty = 10.0 * tf.reduce_mean(tf.reduce_sum(tf.square(annotation * gradients), axis=[1, 2, 3]))
            loss = loss_fn(labels, probabilities) + penalty
        grads = tape.gradient(loss, reference.trainable_variables)
        reference_optimizer.apply(grads, reference.trainable_variables)
        return loss

    plain = models.small_cnn(shape, 10)
    plain_optimizer = keras.optimizers.Adam()

    @tf.function
    def plain_step(images, labels):
        with tf.GradientTape() as tape:
            loss = loss_fn(labels, plain(images, training=True))
        grads = tape.gradient(loss, plain.trainable_variables)
        plain_optimizer.apply(grads, plain.trainable_variables)
        return loss

    seconds = interleaved_medians({
        "ours": lambda: ours(x, y, masks),
        "layered": lambda: layered_step(x, y, masks),
        "ideal": lambda: ideal(x, y, masks),
        "plain": lambda: plain_step(x, y),
    }, args.repeats)
    print(f"# {device_name()}; TF {tf.__version__}, Keras {keras.__version__}; "
          f"small_cnn, batch {args.batch} x {args.size}x{args.size}x3, median of {args.repeats} (interleaved)")
    print("| measure | ms | ours / ideal | / plain step |")
    print("|---|---|---|---|")
    print(f"| RRR train step, `wrap()` model | {seconds['ours'] * 1e3:.1f} | "
          f"{seconds['ours'] / seconds['ideal']:.2f} | {seconds['ours'] / seconds['plain']:.1f}x |")
    print(f"| the layer in front of the classifier (own pass) | {seconds['layered'] * 1e3:.1f} | "
          f"{seconds['layered'] / seconds['ideal']:.2f} | {seconds['layered'] / seconds['plain']:.1f}x |")
    print(f"| ideal: hand-written double-backprop step, one forward | {seconds['ideal'] * 1e3:.1f} | 1.00 | "
          f"{seconds['ideal'] / seconds['plain']:.1f}x |")
    print(f"| plain train step on N | {seconds['plain'] * 1e3:.1f} | - | 1.0x |")


if __name__ == "__main__":
    main()
