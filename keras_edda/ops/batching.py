"""Bounding memory: work through many model evaluations in chunks."""

import tensorflow as tf


def chunked_loop(body, total, chunk_size, state):
    """Runs `state = body(start, stop, state)` over [0, total) in chunks.

    This is the one place where explainers and metrics bound their memory:
    each `body` call evaluates the model on at most `chunk_size` inputs. The
    loop is a `tf.while_loop` with `parallel_iterations=1`, so chunks never
    run side by side, and it works eagerly, inside `tf.function` and inside
    `tf.data` `map`.

    Args:
        body: `(start, stop, state) -> state`; `start` and `stop` are int32
            scalars and `stop - start <= chunk_size`.
        total: number of items (Python int or int32 scalar tensor).
        chunk_size: most items per call; `None` does everything in one call.
        state: nested structure of tensors carried through the loop.

    Returns:
        The final state.
    """
    if chunk_size is None or (isinstance(total, int) and total <= chunk_size):
        return body(tf.constant(0), tf.convert_to_tensor(total, tf.int32), state)
    total = tf.convert_to_tensor(total, tf.int32)
    num_chunks = (total + chunk_size - 1) // chunk_size

    def loop_body(index, state):
        start = index * chunk_size
        stop = tf.minimum(start + chunk_size, total)
        return index + 1, body(start, stop, state)

    _, state = tf.while_loop(
        lambda index, _: index < num_chunks,
        loop_body,
        (tf.constant(0), state),
        parallel_iterations=1,
    )
    return state


def map_rows(fn, inputs, extra, output_shape, chunk_size):
    """Applies `fn(inputs, extra) -> rows` to chunks of `chunk_size` rows.

    The one per-row chunking of keras_edda (explainers and metrics): the
    results of each chunk are written back row by row.

    Args:
        fn: computes the rows of one chunk; `extra` is `None` or the chunk's
            rows of `extra`.
        inputs: a tensor (N, ...).
        extra: `None` or a tensor (N, ...) sliced along with `inputs`.
        output_shape: shape of one row of the result, or a tuple of shapes
            when `fn` returns a tuple of rows.
        chunk_size: most rows per `fn` call; `None`: all at once.

    Returns:
        float32 tensor(s) (N, *output_shape).
    """
    def zeros(shape):
        return tf.zeros(tf.concat([tf.shape(inputs)[:1], shape], axis=0))

    if isinstance(output_shape, tuple):
        initial = tuple(zeros(shape) for shape in output_shape)
    else:
        initial = zeros(output_shape)

    def body(start, stop, result):
        chunk_extra = None if extra is None else extra[start:stop]
        rows = fn(inputs[start:stop], chunk_extra)
        indices = tf.range(start, stop)[:, None]
        return tf.nest.map_structure(
            lambda whole, part: tf.tensor_scatter_nd_update(whole, indices, part),
            result, rows)

    total = inputs.shape[0] if inputs.shape[0] is not None else tf.shape(inputs)[0]
    return chunked_loop(body, total, chunk_size, initial)
