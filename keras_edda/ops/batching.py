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
