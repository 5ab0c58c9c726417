"""How the compiler fails: `MlcError` in Python, `ExitCode` on the command line.

An invalid spec is not an exception: the stages return diagnostics (`diagnostics.Diagnostic`),
every problem at once. Exceptions are for what stops a command outright: a conflict or a stale
plan at apply, an unreadable lock, a path that would leave the repository, a registry that
cannot be reached. Each is an `MlcError` whose message names the file and the fix; anything
else reaching a caller is a bug.
"""

from enum import IntEnum


class MlcError(Exception):
    """Base of every error `mlc.compiler` raises on purpose."""


class ExitCode(IntEnum):
    """What `mlc` exits with; the generated workflows read these (the bot step), so each value
    means one thing. Usage errors have sysexits' EX_USAGE, never a value a command uses."""

    OK = 0
    INVALID = 1  # an invalid spec, a conflict, a stale plan: the command failed
    CHANGES = 2  # `mlc plan --detailed-exitcode`: success, and there are changes (as Terraform)
    PUSHED = 2  # `mlc bot`: success, a commit was pushed
    REPORTED = 3  # `mlc bot`: generated files are stale and were not pushed (a fork)
    USAGE = 64  # a malformed command line: unknown option, missing argument, conflicting flags
