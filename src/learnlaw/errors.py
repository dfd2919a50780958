"""One exception type for mistakes a user can fix (bad file, bad option, bad value).

The CLI turns it into a one-line message and exit code 2; anything else is a bug and keeps
its traceback.
"""


class UserError(Exception):
    """A problem with the user's input, described in one line."""

    def __init__(self, message: str = "", *args: object) -> None:
        # A message quotes user data (keys, cells, file names) that may hold line breaks;
        # escaped, it stays the one line the CLI promises.
        message = "".join(ascii(c)[1:-1] if c in _LINE_BREAKS else c for c in str(message))
        super().__init__(message, *args)


_LINE_BREAKS = frozenset("\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")  # str.splitlines's
