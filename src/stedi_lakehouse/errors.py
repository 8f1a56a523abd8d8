"""Named exceptions for user-facing failures.

Each one carries a message that says what was expected and what was found; the CLI prints it as
one line on stderr and exits non-zero. A failure inside Spark is shown by `failure_text`, which
never quotes data; anything else is a bug and keeps its traceback.
"""


class StediError(Exception):
    """Base class of every failure a user can fix."""


class ConfigError(StediError):
    """A configuration profile, setting or environment variable is wrong."""


class LakeError(StediError):
    """The lake root or one of its folders or tables is missing or unreadable."""


class RulesMismatchError(StediError):
    """A stage was asked to build on tables that were made with another rules preset."""


class KeyMismatchError(ConfigError):
    """The pseudonym key differs from the one the lake's tables were built with."""


class ReadOnlyError(StediError):
    """A statement given to `query` would change the lake or reach outside it."""


# How a Spark Connect client says its endpoint went away: a call under way is cancelled or cut,
# a later one runs out of retries (gRPC's own words: they quote no data).
_GONE_SAYS = ("StatusCode.CANCELLED", "StatusCode.UNAVAILABLE", "[RETRIES_EXCEEDED]")
ENDPOINT_LOST = (
    "the Spark Connect endpoint stopped answering while the command ran (its server was "
    "stopped, or the network failed): run it again once it answers"
)


def lost_endpoint(error: BaseException) -> bool:
    """Whether `error` is a Spark Connect client losing its endpoint (pyspark's classes are
    matched by name: the CLI does not import pyspark to tell)."""
    if type(error).__name__ not in ("SparkConnectGrpcException", "RetriesExceeded"):
        return False
    return any(said in str(error) for said in _GONE_SAYS)


def first_line(error: BaseException) -> str:
    """The first line of an error's message (its class's name when it has none)."""
    said = str(error).strip()
    return said.splitlines()[0] if said else type(error).__name__


def failure_text(error: BaseException) -> str:
    """A failure in one line that carries no data. Spark's messages may quote a record (a
    malformed one, a failed cast), so a Spark or Java failure is named by its classes and error
    condition only; the JVM's log has the rest."""
    java = getattr(error, "java_exception", None)
    if java is not None:  # py4j: walk to the deepest cause, which says what broke
        names: list[str] = []
        while java is not None and len(names) < 10:
            names.append(str(java.getClass().getSimpleName()))
            java = java.getCause()
        return f"{type(error).__name__}: {' <- '.join(dict.fromkeys(names))}"
    if callable(condition := getattr(error, "getCondition", None)):  # a PySparkException
        return f"{type(error).__name__}: [{condition()}]"
    lines = str(error).splitlines()
    return f"{type(error).__name__}: {lines[0] if lines else ''}"
