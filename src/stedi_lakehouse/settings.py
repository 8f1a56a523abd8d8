"""Typed settings: defaults < YAML profile in `conf/<profile>.yaml` < `STEDI_*` environment
variables < explicit overrides (the CLI's flags). Environments differ only here, never in code.
"""

import os
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from stedi_lakehouse.errors import ConfigError
from stedi_lakehouse.keys import PseudonymKey, resolve_key
from stedi_lakehouse.presets import Rules

DEFAULT_PROFILE = "local"
ENV_PREFIX = "STEDI_"


class SparkSettings(BaseModel):
    master: str = Field("local[*]", description="Ignored when launched by spark-submit.")
    app_name: str = "stedi-lakehouse"
    driver_memory: str = "3g"
    shuffle_partitions: int = Field(8, ge=1)
    snapshot_partitions: int = Field(
        2, ge=1, description="Tasks Delta replays a table's log with (Delta's default: 50)."
    )
    jars_dir: Path | None = Field(None, description="Local jar cache (Delta); None on EMR.")
    java_options: str = Field("", description="Extra JVM options of the driver (local only).")
    class_archive: Path | None = Field(
        None, description="JVM class-data archive (`make setup`) the local JVM starts from."
    )
    jit: Literal["auto", "quick", "full"] = Field(
        "auto",
        description="Local JVM's compiler. quick: C1 only, starts fast, computes slower; full: "
        "the JVM's default; auto: quick for a run with little new data on a local lake.",
    )
    jvm_log: Path | None = Field(
        None, description="Where the local JVM's own stderr goes; None keeps the terminal's."
    )
    conf: dict[str, str] = Field(default_factory=dict, description="Extra Spark settings.")

    @field_validator("jars_dir", "class_archive", "jvm_log", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        # STEDI_SPARK__JVM_LOG= (empty) means "none", not the current folder
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("jvm_log")
    @classmethod
    def _log_is_a_file(cls, value: Path | None) -> Path | None:
        value = value.expanduser() if value is not None else None
        if value is not None and value.is_dir():
            raise ValueError(f"{value} is a folder: name a file, or leave it unset")
        return value


class MaintenanceSettings(BaseModel):
    retention_hours: float = Field(
        168, ge=0, description="How long a replaced data file is kept (VACUUM's retention)."
    )
    every_hours: float = Field(
        24, gt=0, description="`run` maintains the lake when the last maintenance is older."
    )
    small_files: int = Field(
        32,
        ge=0,
        description="A run compacts a table it wrote once more of its files than this are "
        "small (0: only `maintain` compacts).",
    )
    # At most half of Delta's target file size (OPTIMIZE's maxFileSize, 1 GiB), so that any two
    # small files fit one new file and a compaction always leaves fewer small files.
    small_file_mb: float = Field(
        128,
        gt=0,
        le=512,
        description="A data file under this size is small; every compaction rewrites these "
        "(OPTIMIZE's minFileSize).",
    )

    @property
    def small_file_bytes(self) -> int:
        return int(self.small_file_mb * 2**20)


class CatalogSettings(BaseModel):
    database: str = Field("stedi", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    metastore: Literal["embedded", "external"] = Field(
        "embedded", description="'embedded' (Derby under metastore_dir) or 'external' (Glue)."
    )
    metastore_dir: Path | None = Field(None, description="Default: <lake root>/_metastore.")


class QualitySettings(BaseModel):
    """Thresholds of a feed's quarantine share (quarantined / read, of a run's new lines)."""

    quarantine_warn_share: float = Field(0.01, ge=0, le=1, description="Above: a warning.")
    quarantine_fail_share: float = Field(
        0.5, ge=0, le=1, description="Above: the run stops before the trusted stage writes."
    )
    # A few bad lines are not a broken feed: stopping every feed for them would hold back
    # every later record, withdrawals included, until someone moved the file.
    quarantine_fail_lines: int = Field(
        100, ge=0, description="The fail share applies from this many new lines of a feed."
    )


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="forbid"
    )

    lake_root: str | None = Field(None, description="Folder or s3:// URI of the lake.")
    rules: Rules = Rules.PRIVACY
    pseudonym_key: SecretStr | None = Field(
        None, description="Key of the subject-key HMAC (STEDI_PSEUDONYM_KEY); see keys.py."
    )
    pseudonym_key_secret: str | None = Field(
        None, description="AWS Secrets Manager secret (name or ARN) holding the key."
    )
    remote: str | None = Field(
        None,
        description="A Spark Connect endpoint to run through (sc://HOST:PORT/;token=...); "
        "default: the lake's own server when one runs (`stedi-lake server start`).",
    )
    spark: SparkSettings = Field(default_factory=SparkSettings)
    catalog: CatalogSettings = Field(default_factory=CatalogSettings)
    maintenance: MaintenanceSettings = Field(default_factory=MaintenanceSettings)
    quality: QualitySettings = Field(default_factory=QualitySettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Flags (init) > environment > the YAML profile; pydantic-settings deep-merges them.
        return init_settings, env_settings, _ProfileSource(settings_cls)

    def require_lake_root(self) -> str:
        if not self.lake_root:
            raise ConfigError("no lake root: pass --lake-root DIR or set STEDI_LAKE_ROOT")
        return self.lake_root

    def resolved_key(self) -> PseudonymKey | None:
        """The pseudonym key: set, in a secret, or this user's local key (`keys.py`)."""
        value = self.pseudonym_key.get_secret_value() if self.pseudonym_key else None
        return resolve_key(value, self.pseudonym_key_secret, self.lake_root)

    def pseudonym_key_bytes(self) -> bytes | None:
        """The subject-key HMAC key as the stages take it (None when there is none)."""
        key = self.resolved_key()
        return key.secret if key else None


_PROFILE_DATA: ContextVar[dict[str, Any] | None] = ContextVar("profile_data", default=None)


class _ProfileSource(PydanticBaseSettingsSource):
    """The settings of the chosen YAML profile (read by load_settings)."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self().get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return _PROFILE_DATA.get() or {}


def conf_dir() -> Path:
    """STEDI_CONF_DIR, else `conf/` here, else the `conf/` of the checkout this package is
    installed from (`make setup`'s editable install, used from another folder)."""
    if configured := os.environ.get(f"{ENV_PREFIX}CONF_DIR"):
        return Path(configured)
    checkout = Path(__file__).resolve().parents[2] / "conf"
    return checkout if not Path("conf").is_dir() and checkout.is_dir() else Path("conf")


def _read_profile(profile: str, directory: Path) -> dict[str, Any]:
    path = directory / f"{profile}.yaml"
    if not path.is_file():
        if profile == DEFAULT_PROFILE:
            return {}
        if not directory.is_dir():
            raise ConfigError(
                f"no profile '{profile}': the folder of the profiles, {directory}/, does not "
                f"exist (set {ENV_PREFIX}CONF_DIR to it)"
            )
        known = sorted(p.stem for p in directory.glob("*.yaml"))
        raise ConfigError(f"no profile '{profile}' in {directory}/ (known: {', '.join(known)})")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {' '.join(str(exc).split())}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must be a mapping of settings, found {type(data).__name__}")
    for key in ("jars_dir", "class_archive"):  # relative to the project, not the cwd
        path = data.get("spark", {}).get(key)
        if path and not Path(path).is_absolute():
            data["spark"][key] = str((directory.parent / path).resolve())
    return data


def _describe(exc: ValidationError) -> str:
    parts = [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
    return "; ".join(parts)


def load_settings(profile: str | None = None, **overrides: Any) -> Settings:
    """Settings of a profile, with overrides (None values ignored) winning over everything."""
    chosen = profile or os.environ.get(f"{ENV_PREFIX}PROFILE") or DEFAULT_PROFILE
    data = _read_profile(chosen, conf_dir())
    explicit = {k: v for k, v in overrides.items() if v is not None}
    token = _PROFILE_DATA.set(data)
    try:
        return Settings(**explicit)
    except ValidationError as exc:
        raise ConfigError(f"bad configuration (profile '{chosen}'): {_describe(exc)}") from None
    except SettingsError as exc:  # an environment variable that does not parse (bad JSON)
        said = f"{exc}: {exc.__cause__}" if exc.__cause__ else str(exc)
        raise ConfigError(f"bad configuration (profile '{chosen}'): {said}") from None
    finally:
        _PROFILE_DATA.reset(token)
