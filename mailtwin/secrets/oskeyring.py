"""The OS keyring through the optional ``keyring`` package (``pip install 'mailtwin[keyring]'``),
imported only when a secret is looked up there."""

from __future__ import annotations

import importlib
from types import ModuleType


def _modules() -> tuple[ModuleType, type[Exception]] | None:
    try:
        keyring = importlib.import_module("keyring")
        errors = importlib.import_module("keyring.errors")
    except ImportError:
        return None
    return keyring, errors.KeyringError


def available() -> bool:
    return _modules() is not None


def lookup(service: str, username: str) -> str | None:
    """The stored secret, or None (no keyring package, no usable backend, no entry)."""
    mods = _modules()
    if mods is None:
        return None
    keyring, failure = mods
    try:
        value = keyring.get_password(service, username)
    except failure:
        return None
    return value if isinstance(value, str) else None


def store(service: str, username: str, secret: str) -> None:
    """Save ``secret``; RuntimeError when the package or a usable backend is missing."""
    mods = _modules()
    if mods is None:
        raise RuntimeError("the keyring package is not installed (pip install 'mailtwin[keyring]')")
    keyring, failure = mods
    try:
        keyring.set_password(service, username, secret)
    except failure as e:
        raise RuntimeError(f"the OS keyring refused it: {e}") from None
