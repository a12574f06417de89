"""Writing files so that a reader (or a kill) never sees a partial one, and never through a link."""

import contextlib
import os
import tempfile


def refuse_link(path, name="path"):
    """Raises `ValueError` when `path` is a symbolic link (a write through it would land elsewhere)."""
    if os.path.islink(path):
        raise ValueError(f"`{name}` is a symbolic link to {os.path.realpath(path)!r}; refusing to write "
                         f"through it. Received: {name}={os.fspath(path)!r}")


@contextlib.contextmanager
def replaced_atomically(path, suffix=".tmp"):
    """Yields a temporary path next to `path`; on success it replaces `path` in one `os.replace`.

    The temporary file gets the mode a plain `open` would give (mkstemp makes it private); on an
    error it is removed and `path` is left as it was. A symbolic link at `path` is refused, so a
    write never lands outside the folder it names.

    Example:

    ```python
    with replaced_atomically("out/model.keras", suffix=".keras") as temporary:
        model.save(temporary)
    ```
    """
    refuse_link(path)
    folder, name = os.path.split(os.path.abspath(path))
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=suffix)
    os.close(handle)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)
        yield temporary
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def write_atomically(path, data):
    """Writes `data` (text or bytes) to `path` through a temporary file and `os.replace`.

    Example:

    ```python
    write_atomically("out/results.json", json.dumps(results))
    ```
    """
    mode = "wb" if isinstance(data, bytes) else "w"
    with replaced_atomically(path) as temporary:
        with open(temporary, mode, **({} if mode == "wb" else {"newline": ""})) as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
