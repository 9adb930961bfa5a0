"""The one exception type users see."""


class CapsuleError(Exception):
    """A user-facing error: str() is one sentence naming the bad input."""
