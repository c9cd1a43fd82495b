"""Read an OfflineIMAP-format INI file and apply ``-k`` overrides, exactly as OfflineIMAP 8 does.

OfflineIMAP 8 parses with ``SafeConfigParser()``, which on Python 3 is ``ConfigParser()`` with its
defaults: ``%(name)s`` interpolation (``BasicInterpolation``), a ``[DEFAULT]`` section whose options
every section inherits, ``%%`` for a literal ``%``, lower-cased option names, case-sensitive section
names, and an error for a section or option given twice. Messages built here never quote a line
or value from the file: any of them may hold a password.
"""

from __future__ import annotations

import configparser
from collections.abc import Sequence
from pathlib import Path

from mailtwin.errors import ConfigError

DEFAULT = "DEFAULT"

# A second, raw parse tells which options a section sets itself and which it inherits from
# [DEFAULT]; configparser has no public way to ask. No real section is named this.
_NO_DEFAULT_SECTION = "\x00mailtwin: no default section"

_PERCENT_HINT = "invalid '%' interpolation; write %% for a literal %"


class RawConfig:
    """The parsed file: values as OfflineIMAP sees them, and which options each section sets."""

    def __init__(self, path: Path, parser: configparser.ConfigParser, own: dict[str, set[str]]):
        self.path = path
        self._parser = parser
        self._own = own

    def sections(self) -> list[str]:
        """Section names in file order, without [DEFAULT]."""
        return self._parser.sections()

    def has_section(self, section: str) -> bool:
        return self._parser.has_section(section)

    def options(self, section: str) -> list[str]:
        """Every option the section has, its own and those inherited from [DEFAULT]."""
        if not self._parser.has_section(section):
            return list(self._parser.defaults())
        return self._parser.options(section)

    def own_options(self, section: str) -> frozenset[str]:
        """The options written in the section itself (or set there with -k)."""
        return frozenset(self._own.get(section, ()))

    def has_option(self, section: str, option: str) -> bool:
        return self._parser.has_option(section, option)

    def get_raw(self, section: str, option: str) -> str | None:
        """The value as written, ``%(name)s`` left alone (OfflineIMAP reads a few so)."""
        if not self._parser.has_option(section, option):
            return None
        return self._parser.get(section, option, raw=True)

    def get(self, section: str, option: str, *, secret: bool = False) -> str | None:
        """The interpolated value, or None if unset. ``secret``: errors never name the value's
        parts (not even a ``%(name)s`` it refers to)."""
        if not self._parser.has_option(section, option):
            return None
        try:
            return self._parser.get(section, option)
        except configparser.InterpolationMissingOptionError as exc:
            if secret:
                raise ConfigError(_PERCENT_HINT, section, option) from None
            raise ConfigError(
                f"%({exc.reference})s refers to an option that is not set in this section "
                "or [DEFAULT] (write %% for a literal %)",
                section,
                option,
            ) from None
        except configparser.InterpolationDepthError:
            raise ConfigError(
                "%(name)s references nest too deep (do they refer to each other?)", section, option
            ) from None
        except configparser.InterpolationError:
            raise ConfigError(_PERCENT_HINT, section, option) from None


def read_ini(path: Path, overrides: Sequence[str] = ()) -> RawConfig:
    """Parse ``path`` the way OfflineIMAP does, then apply ``-k [section:]option=value``."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{path} is not UTF-8 text") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from None

    parser = configparser.ConfigParser()
    _parse(parser, text, path)
    # strict=False: [DEFAULT] may legally appear twice, and here it is an ordinary section
    raw = configparser.RawConfigParser(
        default_section=_NO_DEFAULT_SECTION, interpolation=None, strict=False
    )
    _parse(raw, text, path)
    own = {section: set(raw.options(section)) for section in raw.sections()}
    own.pop(DEFAULT, None)

    for item in overrides:
        _override(parser, own, item, path)
    return RawConfig(path, parser, own)


def _parse(parser: configparser.RawConfigParser, text: str, path: Path) -> None:
    try:
        parser.read_string(text, source=str(path))
    except configparser.MissingSectionHeaderError as exc:
        raise ConfigError(
            f"{path}, line {exc.lineno}: an option before the first [section] header"
        ) from None
    except configparser.ParsingError as exc:
        lines = ", ".join(str(lineno) for lineno, _line in exc.errors)
        raise ConfigError(
            f"{path}, line {lines}: not 'option = value', a [section] header, a comment, "
            "or an indented continuation line"
        ) from None
    except configparser.DuplicateSectionError as exc:
        raise ConfigError(
            f"{path}, line {exc.lineno}: section [{exc.section}] appears twice"
        ) from None
    except configparser.DuplicateOptionError as exc:
        raise ConfigError(
            f"{path}, line {exc.lineno}: option {exc.option} appears twice in [{exc.section}]"
        ) from None


def _override(
    parser: configparser.ConfigParser, own: dict[str, set[str]], item: str, path: Path
) -> None:
    """One ``-k``: as OfflineIMAP's init.py: split at the first '=', then at the first ':' of the
    key; no section means [general]; '_' in the section part stands for a space."""
    key, eq, value = item.partition("=")
    if not eq:
        # no '=' means no value in ``item`` either, so it is safe to show
        raise ConfigError(f"-k {item!r}: expected [section:]option=value")
    section = "general"
    if ":" in key:
        secname, key = key.split(":", 1)
        section = secname.replace("_", " ").strip()
    key = key.strip()
    if not key or not section:
        raise ConfigError(f"-k {key or '?'}: expected [section:]option=value")
    if section != DEFAULT and not parser.has_section(section):
        raise ConfigError(
            f"-k {key}: there is no section [{section}] in {path}",
            hint="in -k, '_' stands for a space: -k Account_Work:autorefresh=5",
        )
    try:
        parser.set(section, key, value)
    except ValueError:  # BasicInterpolation.before_set: a lone '%' (its text quotes the value)
        raise ConfigError(f"-k value: {_PERCENT_HINT}", section, key) from None
    if section != DEFAULT:
        own.setdefault(section, set()).add(parser.optionxform(key))
