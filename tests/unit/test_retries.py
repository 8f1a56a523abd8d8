"""A Spark Connect client's retries (lake/retries.py), driven by pyspark's own retry loop with
an endpoint that answers, blinks or is gone; the waits are recorded, not slept."""

import socket
import time
import uuid

import grpc
import pytest
from pyspark.errors import RetriesExceeded
from pyspark.sql.connect.client.retries import Retrying

from stedi_lakehouse.errors import LakeError
from stedi_lakehouse.lake.retries import UntilLost
from stedi_lakehouse.lake.session import stop_session


class Unavailable(grpc.RpcError):
    def code(self) -> grpc.StatusCode:
        return grpc.StatusCode.UNAVAILABLE


def call(policy: UntilLost, failures: int, waits: list[float] | None = None) -> list[float]:
    """One client call whose endpoint fails `failures` times before it answers; the waits
    (appended to `waits` as they come, when given)."""
    waits = [] if waits is None else waits
    left = failures
    for attempt in Retrying([policy], sleep=waits.append):
        with attempt:
            if left:
                left -= 1
                raise Unavailable()
    return waits


def test_a_blip_is_ridden_out_and_later_calls_still_retry():
    policy = UntilLost(max_retries=6, max_backoff=10_000)
    assert len(call(policy, failures=4)) == 4
    assert len(call(policy, failures=6)) == 6


def test_once_a_call_has_used_every_retry_the_later_ones_give_up_at_once():
    """`server stop` while a run writes: its other threads' calls and the cleanup that
    follows end at once, not after half a minute each."""
    policy = UntilLost(max_retries=6, max_backoff=10_000)
    with pytest.raises(RetriesExceeded):
        call(policy, failures=99)
    for _ in range(3):
        waits: list[float] = []
        with pytest.raises(RetriesExceeded):
            call(policy, failures=99, waits=waits)
        assert waits == []


def test_stopping_a_killed_writers_session_where_nothing_answers_is_one_error():
    """The endpoint a writer reached is gone when it stops what a killed writer left there:
    one error, in about a second (the client's own policy retries for ten minutes)."""
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    started = time.monotonic()
    with pytest.raises(LakeError, match="stopped answering.*run the command again"):
        stop_session(f"sc://127.0.0.1:{port}", str(uuid.uuid4()))
    assert time.monotonic() - started < 60
