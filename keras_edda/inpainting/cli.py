"""`keras-edda train-inpainter`: trains the learned inpainter on a dataset (the parser is in `keras_edda.cli`)."""

import os

from keras_edda import _checks
from keras_edda._errors import UserError, user_errors
from keras_edda._files import replaced_atomically


def run_train_inpainter(args):
    """Trains an inpainter on the training split and saves it atomically."""
    import keras
    import numpy as np
    import tensorflow as tf

    from keras_edda import datasets
    from keras_edda.inpainting import Inpainter, train_inpainter
    from keras_edda.ops import fills

    out = os.path.abspath(args.out)
    if not out.endswith(".keras"):
        raise UserError(f"--out must end in .keras, got {args.out}")
    if os.path.lexists(out) and not args.overwrite:
        raise UserError(f"{args.out} exists; pass --overwrite to replace it")
    if os.path.islink(out) or os.path.isdir(out):
        raise UserError(f"{args.out} is a link or a folder; refusing to replace it")
    # A folder that cannot be written fails now, not after the training.
    user_errors(_checks.check_writable_folder, os.path.dirname(out), "--out")
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
