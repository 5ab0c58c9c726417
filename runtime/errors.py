"""The runtime's base exception: every error `mlc-runtime` reports as one line derives from it."""


class MlcRuntimeError(Exception):
    """Base of the runtime's own errors (bad config, unreadable data, no verdict); catch it to
    handle any of them. Anything else reaching the command line is a bug or an outage."""
