"""Named exceptions for user-facing failures.

Each one carries a message that says what was expected and what was found; the CLI prints it as
one line on stderr and exits non-zero. Anything else is a bug and keeps its traceback.
"""


class StediError(Exception):
    """Base class of every failure a user can fix."""


class ConfigError(StediError):
    """A configuration profile, setting or environment variable is wrong."""


class LakeError(StediError):
    """The lake root or one of its folders or tables is missing or unreadable."""


class RulesMismatchError(StediError):
    """A stage was asked to build on tables that were made with another rules preset."""


class KeyMismatchError(StediError):
    """The pseudonym key differs from the one the lake's tables were built with."""


class ReadOnlyError(StediError):
    """A statement given to `query` would change the lake or reach outside it."""
