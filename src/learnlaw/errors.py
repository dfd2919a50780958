"""One exception type for mistakes a user can fix (bad file, bad option, bad value).

The CLI turns it into a one-line message and exit code 2; anything else is a bug and keeps
its traceback.
"""


class UserError(Exception):
    """A problem with the user's input, described in one line."""
