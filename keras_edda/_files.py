"""Writing files so that a reader (or a kill) never sees a partial one."""

import contextlib
import os
import tempfile


@contextlib.contextmanager
def replaced_atomically(path, suffix=".tmp"):
    """Yields a temporary path next to `path`; on success it replaces `path` in one `os.replace`.

    The temporary file gets the mode a plain `open` would give (mkstemp makes it private); on an
    error it is removed and `path` is left as it was.

    Example:

    ```python
    with replaced_atomically("out/model.keras", suffix=".keras") as temporary:
        model.save(temporary)
    ```
    """
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
