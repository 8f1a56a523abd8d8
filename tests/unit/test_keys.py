"""The pseudonym key and the identifiers of a raw line: plain Python, no Spark."""

import os
import stat

import pytest

from stedi_lakehouse.erasure.identifiers import Subject
from stedi_lakehouse.errors import ConfigError, KeyMismatchError
from stedi_lakehouse.keys import (
    check_fingerprint,
    fingerprint,
    keyed_hash,
    local_key,
    resolve_key,
    secret_key,
    user_key_file,
)


@pytest.fixture
def config_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    return tmp_path / "config"


def test_a_local_lake_gets_a_random_private_key_made_once(config_home):
    path = user_key_file()
    assert path == config_home / "stedi-lakehouse" / "pseudonym.key"
    first = resolve_key(None, None, "/some/lake")
    assert first.created and first.source == str(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(first.secret) == 64  # 32 random bytes, hex
    again = resolve_key(None, None, "/another/lake")
    assert again.secret == first.secret and not again.created
    other_user = local_key(config_home / "elsewhere.key")
    assert other_user.secret != first.secret  # random, not a constant of the package


def test_a_key_file_others_can_read_is_refused(config_home):
    path = config_home / "k"
    path.parent.mkdir(parents=True)
    path.write_text("secret\n")
    os.chmod(path, 0o644)
    with pytest.raises(ConfigError, match="readable by others"):
        local_key(path)


def test_a_set_key_wins_and_an_s3_lake_gets_none_made(config_home):
    assert resolve_key("k1", None, "/lake").secret == b"k1"
    assert resolve_key(None, None, "s3://bucket/lake") is None
    assert not user_key_file().exists()


def test_fingerprints_tell_keys_apart_and_do_not_reveal_them():
    assert fingerprint(b"k1") == fingerprint(b"k1") != fingerprint(b"k2")
    assert b"k1".hex() not in fingerprint(b"k1")
    check_fingerprint("t", None, b"k1")  # a table without one: nothing to compare
    check_fingerprint("t", fingerprint(b"k1"), b"k1")
    with pytest.raises(KeyMismatchError, match="t was built with another pseudonym key"):
        check_fingerprint("t", fingerprint(b"k1"), b"k2")


def test_keyed_hashes_ignore_the_case_of_an_address_only():
    assert keyed_hash(b"k", "email", "A@B.io") == keyed_hash(b"k", "email", "a@b.io")
    assert keyed_hash(b"k", "serial", "AB") != keyed_hash(b"k", "serial", "ab")
    assert keyed_hash(b"k", "email", "a@b.io") != keyed_hash(b"k2", "email", "a@b.io")


def test_the_key_is_read_from_secrets_manager(s3_endpoint, monkeypatch):
    import boto3

    monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", s3_endpoint)
    boto3.client("secretsmanager", region_name="us-east-1").create_secret(
        Name="stedi/key", SecretString="from-the-store"
    )
    key = resolve_key(None, "stedi/key", "s3://bucket/lake")
    assert key.secret == b"from-the-store" and key.source == "secret stedi/key"
    with pytest.raises(ConfigError, match="cannot read the pseudonym key secret stedi/none"):
        secret_key("stedi/none")


PERSON = Subject(frozenset({"ünal.öz@test.com"}), frozenset({"dev-1"}))


@pytest.mark.parametrize(
    ("line", "theirs"),
    [
        (b'{"user": "\\u00dcnal.\\u00d6z\\u0040TEST.com", "timestamp": 1}', True),  # escapes, case
        ('{"email": "ÜNAL.ÖZ@test.com", "serialNumber": "x"}'.encode(), True),  # non-ASCII case
        (b'\xef\xbb\xbf{"serialNumber": "dev-1", "distanceFromObject": 3}', True),  # BOM
        (b'{"user": "\xff\xfe", "email": "\xc3\xbcnal.\xc3\xb6z@test.com"}', True),  # bad UTF-8
        (b'{"email": "x@test.com", "customerName": "\xc3\xbcnal.\xc3\xb6z@test.com"}', False),
        (b'{"user": "x\xc3\xbcnal.\xc3\xb6z@test.com", "timestamp": 1}', False),  # longer address
        (b'{"serialNumber": "dev-10"}', False),
        (b'{"user": " \\u00dcnal.\\u00d6z@test.com\\t", "timestamp": 1}', True),  # spaces
        (b'{"serialNumber": " dev-1 ", "distanceFromObject": 3}', True),
        (b"{'user': '\\u00fcnal.\\u00f6z@test.com', 'timestamp': null", True),  # broken, named
        (b"{'user': 'x\xc3\xbcnal.\xc3\xb6z@test.com'", False),  # broken, another address
        (b"not json at all", False),
        (
            b'{"user": ["x@test.com", "\\u00fcnal.\\u00f6z@test.com"], "timestamp": 1}',
            True,
        ),  # array
        (
            b'{"user": {"to": {"a": "\\u00fcnal.\\u00f6z@test.com"}}, "timestamp": 1}',
            True,
        ),  # object
        (b'{"USER": "\\u00fcnal.\\u00f6z@test.com", "timestamp": 1}', True),  # the name's case
        (b'{"SerialNumber": ["dev-1"], "distanceFromObject": 3}', True),
        (b'{"user": "\\u00fcnal.\\u00f6z@test.com\\u200b", "timestamp": 1}', True),  # invisible
        (b'{"user": "\\u00fcnal\\u0000.\\u00f6z@test.com", "timestamp": 1}', True),  # control
        (b'{"user": "x@test.com", "note": ["\\u00fcnal.\\u00f6z@test.com"]}', False),
        (b'{"user": "x@test.com", "flags": [true, null], "timestamp": 1}', False),
    ],
)
def test_a_line_is_theirs_by_what_it_says_not_how_it_is_spelt(line, theirs):
    assert PERSON.names(line) is theirs
