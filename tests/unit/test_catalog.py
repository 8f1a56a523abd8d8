"""Which embedded metastore a commit may take as holding the lake's tables already."""

from pathlib import Path

from stedi_lakehouse.lake.catalog import derby_folder

URL = "jdbc:derby:;databaseName={};create=true"


def test_an_in_process_session_keeps_its_metastore_wherever_it_is(tmp_path):
    folder = tmp_path / "elsewhere" / "metastore_db"
    assert derby_folder(URL.format(folder), str(tmp_path / "lake"), remote=False) == folder


def test_the_lakes_own_server_keeps_its_metastore_in_the_lake(tmp_path):
    """A lake server (`stedi-lake server start`) runs on this machine, its metastore in the
    lake's folder: commits that add to a table need not register it again."""
    folder = tmp_path / "lake" / "_metastore" / "metastore_db"
    assert derby_folder(URL.format(folder), str(tmp_path / "lake"), remote=True) == folder
    assert derby_folder(URL.format(folder), f"file:{tmp_path / 'lake'}", remote=True) == folder


def test_another_endpoints_metastore_is_never_taken_as_kept(tmp_path):
    """An endpoint's folder outside the lake may be another machine's: every commit registers."""
    folder = tmp_path / "other-lake" / "_metastore" / "metastore_db"
    assert derby_folder(URL.format(folder), str(tmp_path / "lake"), remote=True) is None
    assert derby_folder(URL.format(folder), "s3a://bucket/lake", remote=True) is None
    assert derby_folder(URL.format(Path("/")), "s3a://bucket/lake", remote=True) is None


def test_an_external_metastore_has_no_folder(tmp_path):
    assert derby_folder(None, str(tmp_path), remote=False) is None
    assert derby_folder("jdbc:mysql://db/hive", str(tmp_path), remote=True) is None
