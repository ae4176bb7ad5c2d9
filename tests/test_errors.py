"""The README's error promise: one tree under ``LobfeedError``, every class exported from
``lobfeed``, drawn in the module docstring, and the Python types users catch kept as bases."""

from __future__ import annotations

import inspect

import lobfeed
from lobfeed import exceptions


def error_classes() -> dict[str, type[BaseException]]:
    return {
        name: cls
        for name, cls in vars(exceptions).items()
        if inspect.isclass(cls) and issubclass(cls, BaseException)
    }


def test_every_error_is_a_lobfeed_error_exported_and_drawn_in_the_tree() -> None:
    classes = error_classes()
    assert len(classes) >= 20
    tree = exceptions.__doc__ or ""
    for name, cls in classes.items():
        assert issubclass(cls, lobfeed.LobfeedError), name
        assert getattr(lobfeed, name) is cls, f"lobfeed.{name} is not exported"
        assert name in tree, f"{name} is missing from the tree in exceptions.py"


def test_argument_mistakes_are_still_value_errors_and_lookups_key_errors() -> None:
    for cls in (
        exceptions.ConfigError,
        exceptions.UnknownVenueError,
        exceptions.UnsupportedOptionError,
        exceptions.FrameError,
        exceptions.TapeFormatError,
    ):
        assert issubclass(cls, ValueError), cls
    assert issubclass(exceptions.BookUnavailableError, KeyError)
