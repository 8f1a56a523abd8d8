"""Settings: YAML profile < STEDI_* environment < explicit flags; mistakes are ConfigErrors."""

import pytest

from stedi_lakehouse.errors import ConfigError
from stedi_lakehouse.lake.session import build_session
from stedi_lakehouse.presets import Rules
from stedi_lakehouse.settings import load_settings
from tests.helpers import ROOT, with_spark


@pytest.fixture
def conf(tmp_path, monkeypatch):
    (tmp_path / "site.yaml").write_text(
        "lake_root: /from/profile\nrules: udacity\nspark:\n  driver_memory: 1g\n"
        "  shuffle_partitions: 3\n  jars_dir: jars\n  class_archive: cds/spark.jsa\n"
    )
    monkeypatch.setenv("STEDI_CONF_DIR", str(tmp_path))
    for name in ("STEDI_LAKE_ROOT", "STEDI_RULES", "STEDI_PROFILE", "STEDI_SPARK__DRIVER_MEMORY"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def test_profile_values_and_relative_paths(conf):
    settings = load_settings("site")
    assert (settings.lake_root, settings.rules) == ("/from/profile", Rules.UDACITY)
    assert settings.spark.shuffle_partitions == 3
    assert settings.spark.jars_dir == (conf.parent / "jars").resolve()  # the project, not cwd
    assert settings.spark.class_archive == (conf.parent / "cds" / "spark.jsa").resolve()


def test_environment_beats_profile_and_flags_beat_both(conf, monkeypatch):
    monkeypatch.setenv("STEDI_LAKE_ROOT", "/from/env")
    monkeypatch.setenv("STEDI_SPARK__DRIVER_MEMORY", "2g")
    settings = load_settings("site")
    assert settings.lake_root == "/from/env"
    assert settings.spark.driver_memory == "2g"
    assert settings.spark.shuffle_partitions == 3  # nested keys merge, not replace
    flagged = load_settings("site", lake_root="/from/flag", rules=Rules.PRIVACY)
    assert (flagged.lake_root, flagged.rules) == ("/from/flag", Rules.PRIVACY)


def test_profile_from_the_environment(conf, monkeypatch):
    monkeypatch.setenv("STEDI_PROFILE", "site")
    assert load_settings().lake_root == "/from/profile"


def test_unknown_setting_in_a_profile_is_a_config_error(conf):
    (conf / "typo.yaml").write_text("lake_rot: /x\n")
    with pytest.raises(ConfigError, match="lake_rot"):
        load_settings("typo")


def test_an_environment_value_that_does_not_parse_is_a_config_error(conf, monkeypatch):
    monkeypatch.setenv("STEDI_SPARK__CONF", "{bad")
    with pytest.raises(ConfigError, match=r"profile 'site'.*field \"spark\".*line 1 column 2"):
        load_settings("site")


def test_pseudonym_key_is_secret_in_reprs(conf, monkeypatch):
    monkeypatch.setenv("STEDI_PSEUDONYM_KEY", "s3cr3t")
    settings = load_settings("site")
    assert settings.pseudonym_key.get_secret_value() == "s3cr3t"
    assert settings.pseudonym_key_bytes() == b"s3cr3t"
    assert "s3cr3t" not in repr(settings) and "s3cr3t" not in str(settings.model_dump())
    monkeypatch.delenv("STEDI_PSEUDONYM_KEY")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(conf / "config"))
    made = load_settings("site").resolved_key()  # a local lake: this user's own random key
    assert made.created and made.secret != b"s3cr3t"
    assert load_settings("site", lake_root="s3://bucket/lake").pseudonym_key_bytes() is None


def test_empty_jvm_log_is_unset_and_a_folder_is_a_config_error(conf, monkeypatch):
    monkeypatch.setenv("STEDI_SPARK__JVM_LOG", "")
    assert load_settings("site").spark.jvm_log is None  # not the current folder
    monkeypatch.setenv("STEDI_SPARK__JVM_LOG", str(conf))
    with pytest.raises(ConfigError, match="spark.jvm_log: .* is a folder"):
        load_settings("site")


def test_outside_the_project_the_checkouts_profiles_are_found(monkeypatch, tmp_path):
    monkeypatch.delenv("STEDI_CONF_DIR")
    monkeypatch.delenv("STEDI_PROFILE", raising=False)
    monkeypatch.chdir(tmp_path)  # no conf/ here
    assert load_settings().spark.jars_dir == (ROOT / ".cache" / "jars").resolve()
    with pytest.raises(ConfigError, match=r"no profile 'nope' in .*/conf/ \(known: emr, local"):
        load_settings("nope")
    monkeypatch.setenv("STEDI_CONF_DIR", str(tmp_path / "none"))
    with pytest.raises(ConfigError, match="profiles, .*/none/, does not exist"):
        load_settings("nope")


def test_a_jvm_without_the_delta_jars_is_refused_before_it_starts(test_settings, monkeypatch):
    monkeypatch.delenv("PYSPARK_GATEWAY_PORT", raising=False)
    bare = with_spark(test_settings, jars_dir=None)
    with pytest.raises(ConfigError, match=r"no Delta jars \(spark.jars_dir\)"):
        build_session(bare, "/tmp/lake")
