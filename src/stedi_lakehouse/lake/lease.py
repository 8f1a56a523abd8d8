"""The lease of an S3 lake: `<root>/_lock`, an object only one writer can create (a conditional
put) holding who holds it, renewed while the holder lives and taken over once it has expired.
S3 has no lock that dies with its holder, so a killed writer's lease blocks others until it
expires; a holder that cannot renew in time stops before another may take over.

A holder writing through a Spark Connect endpoint also names its session there: killed, its
operations go on in the endpoint, so whoever takes its lease over must first stop them (through
the same endpoint), and until someone has, the lease keeps naming them."""

import atexit
import contextlib
import json
import os
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from stedi_lakehouse.errors import LakeError
from stedi_lakehouse.lake.files import s3_client

LEASE_OBJECT = "_lock"
LEASE_SECONDS = 60.0
LOST_EXIT = 75  # EX_TEMPFAIL: the work can be run again


def split_s3(root: str) -> tuple[str, str]:
    """(bucket, key prefix ending in '/' or empty) of an s3:// or s3a:// root."""
    rest = root.split("://", 1)[1]
    bucket, _, prefix = rest.partition("/")
    prefix = prefix.strip("/")
    return bucket, f"{prefix}/" if prefix else ""


def _refused(error: Exception) -> bool:
    """The precondition of a conditional request did not hold (or raced one that did)."""
    code = getattr(error, "response", {}).get("Error", {}).get("Code")
    return code in ("PreconditionFailed", "ConditionalRequestConflict", "412", "409")


def endpoint_of(url: str) -> str:
    """`sc://host:port` of a Spark Connect URL: its parameters (the token) left out."""
    return url.split(";", 1)[0].rstrip("/")


@dataclass
class Lease:
    root: str
    bucket: str
    key: str
    holder: str
    seconds: float
    etag: str = ""
    renewed: float = 0.0  # time.monotonic() of the last put
    lost: bool = False
    session: dict[str, str] | None = None  # this holder's {endpoint, session_id}, if served
    unsettled: list[dict[str, str]] = field(default_factory=list)  # dead holders' sessions
    _puts: threading.RLock = field(default_factory=threading.RLock, repr=False)

    def body(self) -> bytes:
        return json.dumps(
            {
                "holder": self.holder,
                "command": " ".join(["stedi-lake", *sys.argv[1:2]]),
                "lease_seconds": self.seconds,
                "session": self.session,
                "unsettled": self.unsettled,
            }
        ).encode()

    def put(self, client, **condition: str) -> None:
        with self._puts:
            started = time.monotonic()
            self.etag = client.put_object(
                Bucket=self.bucket, Key=self.key, Body=self.body(), **condition
            )["ETag"]
            self.renewed = started

    def renew(self, client) -> None:
        """Put the lease again, on the condition that it is still this holder's."""
        with self._puts:  # the renewing thread and `settle` each put on the other's ETag
            self.put(client, IfMatch=self.etag)


def _holder() -> str:
    return f"{socket.gethostname()} pid {os.getpid()} ({uuid.uuid4().hex[:8]})"


def take(
    root: str, *, seconds: float = LEASE_SECONDS, client=None, endpoint: str | None = None
) -> Lease:
    """Hold the lake's lease until this process ends; another live holder is a LakeError
    naming it. An expired lease (its holder died or stalled) is taken over; `endpoint`: the
    Spark Connect endpoint this writer uses (None: in-process), which must be the one of any
    session a dead holder left running (`Lease.unsettled`, for `settle` to stop)."""
    client = client or s3_client()
    bucket, prefix = split_s3(root)
    lease = Lease(root, bucket, f"{prefix}{LEASE_OBJECT}", _holder(), seconds)
    try:
        lease.put(client, IfNoneMatch="*")
    except Exception as error:
        if not _refused(error):
            raise LakeError(f"cannot take the lease of lake {root}: {error}") from None
        _take_over(client, lease, endpoint)
    _keep(client, lease)
    return lease


def settle(lease: Lease, client, *, session: dict[str, str], stop: Callable[[str], None]) -> None:
    """Name this holder's endpoint session in the lease, stop the sessions dead holders left
    running (`stop(session_id)`, at this holder's endpoint), then forget them."""
    lease.session = session
    lease.renew(client)
    for dead in list(lease.unsettled):
        stop(dead["session_id"])
        lease.unsettled.remove(dead)
        lease.renew(client)


def _take_over(client, lease: Lease, endpoint: str | None) -> None:
    """Replace an expired lease (only the one read: a conditional put on its ETag)."""
    try:
        current = client.get_object(Bucket=lease.bucket, Key=lease.key)
    except Exception as error:  # released meanwhile: try once more from the start
        if getattr(error, "response", {}).get("Error", {}).get("Code") in ("NoSuchKey", "404"):
            return lease.put(client, IfNoneMatch="*")
        raise
    held = _body_of(current["Body"].read())
    # S3's own clock dates the last renewal, so holders' clocks do not matter
    age = (datetime.now(UTC) - current["LastModified"]).total_seconds()
    ttl = float(held.get("lease_seconds", LEASE_SECONDS))
    if age < ttl:
        raise LakeError(
            f"lake {lease.root} is in use by {held.get('command', 'stedi-lake')} on "
            f"{held.get('holder', '?')}: try again when it has finished (a holder that died "
            f"leaves it for at most {ttl - age:.0f} s more)"
        )
    dead = held.get("unsettled")
    named = [*(dead if isinstance(dead, list) else []), held.get("session")]
    left = [s for s in named if _is_session(s)]
    elsewhere = sorted({s["endpoint"] for s in left} - {endpoint_of(endpoint or "")})
    if elsewhere:
        raise LakeError(
            f"the last writer of lake {lease.root} ({held.get('holder', '?')}) died while "
            f"writing through the Spark Connect endpoint {', '.join(elsewhere)}, where what it "
            "sent may still be running: run this command through that endpoint (`--remote`), "
            f"which stops it first; if that endpoint was restarted since, delete {lease.key} "
            f"from bucket {lease.bucket}"
        )
    lease.unsettled = left
    try:
        lease.put(client, IfMatch=current["ETag"])
    except Exception as error:
        if _refused(error):
            raise LakeError(
                f"lake {lease.root} was just taken by another writer: try again"
            ) from None
        raise


def _body_of(text: bytes) -> dict:
    """A lease's JSON (another writer's, or anyone's: what does not parse names nobody)."""
    try:
        held = json.loads(text or b"{}")
    except ValueError:
        return {}
    return held if isinstance(held, dict) else {}


def _is_session(value: object) -> bool:
    return isinstance(value, dict) and {"endpoint", "session_id"} <= value.keys()


def _keep(client, lease: Lease) -> None:
    """Renew the lease a few times per term; release it at exit. A holder that cannot renew
    before its term ends may have been taken over: it stops at once rather than write."""

    def renew() -> None:
        while True:
            time.sleep(lease.seconds / 4)
            try:
                lease.renew(client)
                continue
            except Exception as error:
                taken = _refused(error)
            if taken or time.monotonic() - lease.renewed > lease.seconds * 0.9:
                lease.lost = True
                print(
                    f"error: lost the lease of lake {lease.root} (another writer may hold it): "
                    "stopping; run the command again",
                    file=sys.stderr,
                    flush=True,
                )
                os._exit(LOST_EXIT)

    threading.Thread(target=renew, name="lake-lease", daemon=True).start()
    atexit.register(release, lease, client)


def release(lease: Lease, client=None) -> None:
    """Delete the lease if it is still this holder's (best effort: it expires anyway); one
    that still names a dead holder's running session is left to expire, for the next holder."""
    if lease.lost or lease.unsettled:
        return
    with contextlib.suppress(Exception):
        (client or s3_client()).delete_object(
            Bucket=lease.bucket, Key=lease.key, IfMatch=lease.etag
        )
