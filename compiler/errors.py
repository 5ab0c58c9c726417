"""The compiler's base exception: catch `MlcError` to handle anything mlc raises on purpose.

An invalid spec is not an exception: the stages return diagnostics (`diagnostics.Diagnostic`),
every problem at once. Exceptions are for what stops a command outright: a conflict or a stale
plan at apply, an unreadable lock, a path that would leave the repository, a registry that
cannot be reached. Each is an `MlcError` whose message names the file and the fix; anything
else reaching a caller is a bug.
"""


class MlcError(Exception):
    """Base of every error `mlc.compiler` raises on purpose."""
