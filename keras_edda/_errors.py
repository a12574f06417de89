"""The error a command reports as one line: below the library and the application both."""


class UserError(Exception):
    """A mistake in the command line or its inputs: one line on stderr, exit code 2."""


def user_errors(fn, *args, **kwargs):
    """Calls `fn`; its `ValueError`/`TypeError` become a `UserError` with the first line of the message.

    Example:

    ```python
    data = user_errors(datasets.load, "digits")
    ```
    """
    try:
        return fn(*args, **kwargs)
    except (ValueError, TypeError) as error:
        raise UserError(str(error).strip().splitlines()[0] if str(error).strip() else repr(error)) from None
