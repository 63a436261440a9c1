"""One exception tree: every public error pychat_db defines derives from PychatDbError."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pychat_db
from pychat_db.errors import PychatDbError

SKIP = {"pychat_db.cli.__main__", "pychat_db._lockholder", "pychat_db.isar.worker"}  # programs, not modules


def _library_errors() -> dict[str, type[BaseException]]:
    found = {}
    for info in pkgutil.walk_packages(pychat_db.__path__, "pychat_db."):
        if info.name in SKIP:
            continue
        module = importlib.import_module(info.name)
        for name, value in vars(module).items():
            if (
                inspect.isclass(value)
                and issubclass(value, BaseException)
                and value.__module__ == info.name
                and not name.startswith("_")
            ):
                found[f"{info.name}.{name}"] = value
    return found


def test_every_public_error_is_a_pychat_db_error() -> None:
    errors = _library_errors()
    assert len(errors) >= 15, sorted(errors)  # the walk really found the tree
    strays = sorted(name for name, cls in errors.items() if not issubclass(cls, PychatDbError))
    assert strays == []


def test_value_errors_stay_value_errors() -> None:
    from pychat_db.convert import NaiveDatetimeError
    from pychat_db.exchange.codec import FieldError

    for cls in (NaiveDatetimeError, FieldError):  # callers that validate input catch ValueError
        assert issubclass(cls, ValueError) and issubclass(cls, PychatDbError)
