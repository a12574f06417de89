"""`keras-edda train-inpainter`: trains the learned inpainter on a dataset.

Kept free of TensorFlow imports at module level: `keras_edda.cli` builds its
parser before TensorFlow's logging is configured.
"""

import os

from keras_edda._argtypes import positive_float, positive_int
from keras_edda._files import replaced_atomically


def run_train_inpainter(args):
    """Trains an inpainter on the training split and saves it atomically."""
    import keras
    import numpy as np
    import tensorflow as tf

    from keras_edda import datasets
    from keras_edda.cli import UserError
    from keras_edda.inpainting import Inpainter, train_inpainter
    from keras_edda.ops import fills

    out = os.path.abspath(args.out)
    if not out.endswith(".keras"):
        raise UserError(f"--out must end in .keras, got {args.out}")
    if os.path.exists(out) and not args.overwrite:
        raise UserError(f"{args.out} exists; pass --overwrite to replace it")
    try:
        data = datasets.load(args.dataset, data_dir=args.data_dir, download=args.download,
                             image_size=args.image_size, channels=args.channels,
                             max_examples=args.max_examples)
    except (ValueError, OSError) as error:
        raise UserError(f"cannot load dataset {args.dataset}: {str(error).strip().splitlines()[0]}")
    x_train = data.x_train[: args.max_train] if args.max_train else data.x_train
    try:
        network = train_inpainter(x_train, epochs=args.epochs, batch_size=args.batch_size,
                                  validation_data=data.x_test, filters=args.filters, depth=args.depth,
                                  learning_rate=args.learning_rate, seed=args.seed, verbose=args.verbose,
                                  data_format="channels_last")
    except ValueError as error:
        raise UserError(str(error).strip().splitlines()[0])
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with replaced_atomically(out, suffix=".keras") as temporary:
        network.save(temporary, overwrite=True)
    # Hole error on held-out images, boxes of a third of the side, against two built-in fills.
    images = tf.constant(data.x_test[:512])
    height, width = images.shape[1], images.shape[2]
    rng = np.random.default_rng(args.seed)
    side = (height // 3, width // 3)
    masks = np.zeros((len(images), height, width, 1), "float32")
    for index, (top, left) in enumerate(zip(rng.integers(0, height - side[0] + 1, len(images)),
                                            rng.integers(0, width - side[1] + 1, len(images)))):
        masks[index, top:top + side[0], left:left + side[1]] = 1.0
    errors = {}
    for name, fill in (("inpainter", Inpainter(network, batch_size=256)), ("inpaint", "inpaint"),
                       ("mean", "mean")):
        filled = fills.fill_masked(images, tf.constant(masks), fills.get(fill))
        errors[name] = float(tf.reduce_sum(tf.square(filled - images) * masks)
                             / (masks.sum() * images.shape[-1]))
    print("held-out hole MSE (boxes of a third of the side): "
          + ", ".join(f"{name} {value:.5f}" for name, value in errors.items()))
    print(f"Wrote {args.out} (use fill='inpainter:{args.out}')")
    keras.backend.clear_session()


def add_commands(commands):
    """Adds `train-inpainter` to the `keras-edda` subcommands."""
    train = commands.add_parser(
        "train-inpainter", help="train the learned inpainting fill on a dataset",
        description="Trains keras_edda.inpainting's gated-convolution U-Net to fill random boxes and "
                    "strokes (5-60 %% of the image) on the training split and saves it as a .keras "
                    "file, usable as fill='inpainter:PATH'.")
    train.add_argument("--dataset", default="digits",
                       help="'digits' (embedded, no network; default), 'tfds:NAME' or 'folder:PATH'")
    train.add_argument("--data-dir", help="tfds data directory")
    train.add_argument("--download", action="store_true", help="let tfds download")
    train.add_argument("--image-size", type=positive_int, default=32, help="side of the images (32)")
    train.add_argument("--channels", type=int, choices=(1, 3), help="1 or 3 (default: the data's)")
    train.add_argument("--max-examples", type=positive_int, help="most examples per tfds split")
    train.add_argument("--max-train", type=positive_int, help="use only the first N training images")
    train.add_argument("--epochs", type=positive_int, default=20, help="epochs (20)")
    train.add_argument("--batch-size", type=positive_int, default=64)
    train.add_argument("--filters", type=positive_int, default=32, help="channels of the first level (32)")
    train.add_argument("--depth", type=positive_int, default=2, help="number of halvings (2)")
    train.add_argument("--learning-rate", type=positive_float, default=2e-3)
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--out", required=True, help="the .keras file to write")
    train.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    train.add_argument("--verbose", type=int, default=2, choices=(0, 1, 2), help="Keras' fit verbosity")
    train.set_defaults(handler=run_train_inpainter)
