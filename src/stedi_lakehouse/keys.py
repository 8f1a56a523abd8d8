"""The pseudonym key: where it comes from, and what may be said about it.

The key is a secret of the installation, never of the package. It comes, in this order, from
`STEDI_PSEUDONYM_KEY` (or the profile's `pseudonym_key`), from AWS Secrets Manager
(`pseudonym_key_secret`, read by the driver when a command needs the key), or, for a lake on
this machine, from a random key made on first use in the user's config folder (mode 0600).

Tables built with the key record its fingerprint, a keyed hash of a constant: it tells two
keys apart and reveals nothing of the key. Erasure journals and the suppression list hold
keyed hashes of identifiers, never the identifiers.
"""

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from stedi_lakehouse.errors import ConfigError, KeyMismatchError
from stedi_lakehouse.lake.layout import is_local_path

FINGERPRINT_PROPERTY = "stedi.pseudonymKeyFingerprint"
_FINGERPRINT_MESSAGE = b"stedi-lakehouse pseudonym key fingerprint"


@dataclass(frozen=True)
class PseudonymKey:
    secret: bytes
    source: str  # where it came from, for messages (never the key)
    created: bool = False  # made by this process (the CLI says where it is kept)

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.secret)


def fingerprint(key: bytes) -> str:
    return hmac.new(key, _FINGERPRINT_MESSAGE, hashlib.sha256).hexdigest()[:16]


def keyed_hash(key: bytes, kind: str, value: str) -> str:
    """A keyed hash of an identifier (`kind`: email or serial), for journals and the
    suppression list; e-mail addresses are compared in lower case."""
    text = value.lower() if kind == "email" else value
    return hmac.new(key, f"{kind}\0{text}".encode(), hashlib.sha256).hexdigest()


def user_key_file() -> Path:
    """Where a local lake's key is kept: the user's config folder, outside any lake."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "stedi-lakehouse" / "pseudonym.key"


def local_key(path: Path) -> PseudonymKey:
    """The key kept in `path`, made (32 random bytes, hex, mode 0600) if there is none."""
    created = False
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it first: use theirs
            pass
        else:
            with os.fdopen(fd, "w") as out:
                out.write(secrets.token_hex(32) + "\n")
            created = True
    if path.stat().st_mode & 0o077:
        raise ConfigError(f"the pseudonym key file {path} is readable by others: chmod 600 it")
    secret = path.read_text().strip()
    if not secret:
        raise ConfigError(f"the pseudonym key file {path} is empty")
    return PseudonymKey(secret.encode(), str(path), created)


def secret_key(secret_id: str) -> PseudonymKey:
    """The key held in AWS Secrets Manager under `secret_id` (name or ARN), read with the
    standard AWS credential chain."""
    try:
        import boto3
        from botocore.exceptions import BotoCoreError, ClientError
    except ImportError:
        raise ConfigError("pseudonym_key_secret needs boto3 (pip install boto3)") from None
    # an ARN names its region; a name is looked up in AWS_REGION (or AWS_DEFAULT_REGION)
    region = secret_id.split(":")[3] if secret_id.startswith("arn:") else None
    region = region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    try:
        client = boto3.client("secretsmanager", region_name=region)
        answer = client.get_secret_value(SecretId=secret_id)
    except (BotoCoreError, ClientError) as exc:
        raise ConfigError(f"cannot read the pseudonym key secret {secret_id}: {exc}") from None
    secret = answer.get("SecretString") or answer.get("SecretBinary") or ""
    secret = secret.encode() if isinstance(secret, str) else bytes(secret)
    if not secret.strip():
        raise ConfigError(f"the pseudonym key secret {secret_id} is empty")
    return PseudonymKey(secret.strip(), f"secret {secret_id}")


def resolve_key(value: str | None, secret_id: str | None, lake_root: str | None):
    """The key from the setting, the secret, or the user's key file (local lakes only);
    None where none applies (commands that need it then refuse)."""
    if value:
        return PseudonymKey(value.encode(), "STEDI_PSEUDONYM_KEY")
    if secret_id:
        return secret_key(secret_id)
    if lake_root and is_local_path(lake_root):
        return local_key(user_key_file())
    return None


def fingerprint_record(key: bytes) -> dict[str, str]:
    """What a commit of keyed rows records of its key (in its metadata, in the same commit)."""
    return {FINGERPRINT_PROPERTY: fingerprint(key)}


def check_fingerprint(table: str, recorded: str | None, key: bytes) -> None:
    """Refuse to work on `table` with another key than the one it was built with."""
    if recorded is not None and recorded != fingerprint(key):
        raise KeyMismatchError(
            f"{table} was built with another pseudonym key (fingerprint {recorded}; this "
            f"key's is {fingerprint(key)}): set STEDI_PSEUDONYM_KEY to the key it was built with"
        )
