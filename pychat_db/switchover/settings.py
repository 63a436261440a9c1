"""The switch-over's settings: the phase and its options, from code or the environment, read once at start-up."""

from __future__ import annotations

import enum
import functools
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from pychat_db.errors import PychatDbError

__all__ = [
    "ENV_VARS",
    "OnSecondaryFailure",
    "Phase",
    "Settings",
    "SettingsError",
    "parse_choice",
    "parse_rate",
    "startup_settings",
]

E = TypeVar("E", bound=enum.StrEnum)


class Phase(enum.StrEnum):
    """Which store the app uses (see `pychat_db.switchover`)."""

    LEGACY = "legacy"
    DUAL = "dual"
    SHADOW = "shadow"
    SQLITE = "sqlite"


class OnSecondaryFailure(enum.StrEnum):
    RAISE = "raise"  # roll the primary's write back and raise SecondaryWriteError
    QUEUE = "queue"  # keep the primary's write, queue the secondary's for drain()


class SettingsError(PychatDbError):
    """A switch-over setting has a value that means nothing (names the variable and the allowed values)."""


ENV_VARS = {
    "phase": "PYCHAT_DB_MODE",
    "db_path": "PYCHAT_DB_PATH",
    "legacy_dir": "PYCHAT_DB_LEGACY_DIR",
    "on_secondary_failure": "PYCHAT_DB_ON_SECONDARY_FAILURE",
    "shadow_sample_rate": "PYCHAT_DB_SHADOW_SAMPLE_RATE",
    "shadow_log": "PYCHAT_DB_SHADOW_LOG",
    "legacy_autosave": "PYCHAT_DB_LEGACY_AUTOSAVE",
}


def parse_choice(kind: type[E], name: str, value: object) -> E:
    """`value` as a member of `kind` (case and spaces ignored); SettingsError naming `name` and the allowed values."""
    if isinstance(value, kind):
        return value
    try:
        return kind(str(value).strip().lower())
    except ValueError:
        allowed = "|".join(member.value for member in kind)
        raise SettingsError(f"{name}={value!r}: unknown value; use one of {allowed}") from None


def parse_rate(name: str, value: object) -> float:
    """`value` as a share from 0 to 1; SettingsError naming `name` otherwise."""
    try:
        rate = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        rate = -1.0
    if not 0.0 <= rate <= 1.0:
        raise SettingsError(f"{name}={value!r}: expected a number from 0 (never compare) to 1 (compare every read)")
    return rate


def _flag(name: str, value: str) -> bool:
    text = value.strip().lower()
    if text in {"1", "true", "yes", "on"}:
        return True
    if text in {"", "0", "false", "no", "off"}:
        return False
    raise SettingsError(f"{name}={value!r}: expected 1 or 0")


@dataclass(frozen=True, slots=True)
class Settings:
    """The switch-over configuration; `Settings.from_env()` reads it from the environment (see ENV_VARS).

    phase: `legacy|dual|shadow|sqlite` (default sqlite, the end state); db_path: the SQLite file;
    legacy_dir: the legacy store's export directory; on_secondary_failure: `raise|queue`;
    shadow_sample_rate: share of reads compared in the shadow phase; shadow_log: file the
    mismatch JSON lines are appended to (None: stderr); legacy_autosave: save the legacy
    store after every committed write (else on close).
    """

    phase: Phase = Phase.SQLITE
    db_path: str = "chat.db"
    legacy_dir: str = "legacy_export"
    on_secondary_failure: OnSecondaryFailure = OnSecondaryFailure.RAISE
    shadow_sample_rate: float = 1.0
    shadow_log: str | None = None
    legacy_autosave: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "phase", parse_choice(Phase, "phase", self.phase))
        object.__setattr__(
            self,
            "on_secondary_failure",
            parse_choice(OnSecondaryFailure, "on_secondary_failure", self.on_secondary_failure),
        )
        object.__setattr__(self, "shadow_sample_rate", parse_rate("shadow_sample_rate", self.shadow_sample_rate))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """The settings from `environ` (default `os.environ`); unset variables keep the defaults.

        Raises SettingsError naming the variable for a value that means nothing.
        """
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        if (mode := env.get(ENV_VARS["phase"])) is not None and mode.strip():
            values["phase"] = parse_choice(Phase, ENV_VARS["phase"], mode)
        if (policy := env.get(ENV_VARS["on_secondary_failure"])) is not None and policy.strip():
            values["on_secondary_failure"] = parse_choice(OnSecondaryFailure, ENV_VARS["on_secondary_failure"], policy)
        if (rate := env.get(ENV_VARS["shadow_sample_rate"])) is not None and rate.strip():
            values["shadow_sample_rate"] = parse_rate(ENV_VARS["shadow_sample_rate"], rate)
        for key in ("db_path", "legacy_dir", "shadow_log"):
            if value := env.get(ENV_VARS[key]):
                values[key] = value
        if (autosave := env.get(ENV_VARS["legacy_autosave"])) is not None:
            values["legacy_autosave"] = _flag(ENV_VARS["legacy_autosave"], autosave)
        return cls(**values)


@functools.cache
def startup_settings() -> Settings:
    """The settings read from the environment the first time this is called; later calls return the same.

    The phase must not change under a running app: a process reads it once, at start-up.
    """
    return Settings.from_env()
