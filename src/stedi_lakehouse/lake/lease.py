"""The lease of an S3 lake: `<root>/_lock`, an object only one writer can create (a conditional
put) holding who holds it, renewed while the holder lives and taken over once it has expired.
S3 has no lock that dies with its holder, so a killed writer's lease blocks others until it
expires; a holder that cannot renew in time stops before another may take over."""

import atexit
import contextlib
import json
import os
import socket
import sys
import threading
import time
import uuid
from dataclasses import dataclass
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

    def body(self) -> bytes:
        return json.dumps(
            {
                "holder": self.holder,
                "command": " ".join(["stedi-lake", *sys.argv[1:2]]),
                "lease_seconds": self.seconds,
            }
        ).encode()

    def put(self, client, **condition: str) -> None:
        started = time.monotonic()
        self.etag = client.put_object(
            Bucket=self.bucket, Key=self.key, Body=self.body(), **condition
        )["ETag"]
        self.renewed = started


def _holder() -> str:
    return f"{socket.gethostname()} pid {os.getpid()} ({uuid.uuid4().hex[:8]})"


def take(root: str, *, seconds: float = LEASE_SECONDS, client=None) -> Lease:
    """Hold the lake's lease until this process ends; another live holder is a LakeError
    naming it. An expired lease (its holder died or stalled) is taken over."""
    client = client or s3_client()
    bucket, prefix = split_s3(root)
    lease = Lease(root, bucket, f"{prefix}{LEASE_OBJECT}", _holder(), seconds)
    try:
        lease.put(client, IfNoneMatch="*")
    except Exception as error:
        if not _refused(error):
            raise LakeError(f"cannot take the lease of lake {root}: {error}") from None
        _take_over(client, lease)
    _keep(client, lease)
    return lease


def _take_over(client, lease: Lease) -> None:
    """Replace an expired lease (only the one read: a conditional put on its ETag)."""
    try:
        current = client.get_object(Bucket=lease.bucket, Key=lease.key)
    except Exception as error:  # released meanwhile: try once more from the start
        if getattr(error, "response", {}).get("Error", {}).get("Code") in ("NoSuchKey", "404"):
            return lease.put(client, IfNoneMatch="*")
        raise
    held = json.loads(current["Body"].read() or b"{}")
    # S3's own clock dates the last renewal, so holders' clocks do not matter
    age = (datetime.now(UTC) - current["LastModified"]).total_seconds()
    ttl = float(held.get("lease_seconds", LEASE_SECONDS))
    if age < ttl:
        raise LakeError(
            f"lake {lease.root} is in use by {held.get('command', 'stedi-lake')} on "
            f"{held.get('holder', '?')}: try again when it has finished (a holder that died "
            f"leaves it for at most {ttl - age:.0f} s more)"
        )
    try:
        lease.put(client, IfMatch=current["ETag"])
    except Exception as error:
        if _refused(error):
            raise LakeError(
                f"lake {lease.root} was just taken by another writer: try again"
            ) from None
        raise


def _keep(client, lease: Lease) -> None:
    """Renew the lease a few times per term; release it at exit. A holder that cannot renew
    before its term ends may have been taken over: it stops at once rather than write."""

    def renew() -> None:
        while True:
            time.sleep(lease.seconds / 4)
            try:
                lease.put(client, IfMatch=lease.etag)
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
    """Delete the lease if it is still this holder's (best effort: it expires anyway)."""
    if lease.lost:
        return
    with contextlib.suppress(Exception):
        (client or s3_client()).delete_object(
            Bucket=lease.bucket, Key=lease.key, IfMatch=lease.etag
        )
