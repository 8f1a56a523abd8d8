"""How a Spark Connect client retries: a blip of about half a minute is ridden out; an
endpoint that stays away ends the command once, not once per call still to come."""

import threading

from pyspark.sql.connect.client.retries import DefaultPolicy, RetryPolicyState


def quickly() -> list[DefaultPolicy]:
    """A few quick retries: an endpoint that does not answer fails in about a second, not
    after the client's ten minutes of retrying."""
    return [DefaultPolicy(max_retries=3)]


class UntilLost(DefaultPolicy):
    """Spark's default retries, capped; once one call has used them all, the endpoint is taken
    for lost and every later retry of this client (other threads' and the cleanup calls' too)
    gives up at once."""

    def __init__(self, max_retries: int, max_backoff: int) -> None:
        super().__init__(max_retries=max_retries, max_backoff=max_backoff)
        self.lost = threading.Event()

    def to_state(self) -> RetryPolicyState:
        return _UntilLostState(self)


class _UntilLostState(RetryPolicyState):
    def __init__(self, policy: UntilLost) -> None:
        super().__init__(policy)
        self._lost = policy.lost

    def next_attempt(self) -> int | None:
        if self._lost.is_set():
            return None
        wait = super().next_attempt()
        if wait is None:
            self._lost.set()
        return wait
