"""Python-valued options (folderfilter, nametrans, folderincludes), evaluated as OfflineIMAP does.

OfflineIMAP (localeval.py, repository/Base.py) loads ``[general] pythonfile`` as a module and
evaluates each expression with ``eval(text, names)``, where ``names`` holds every name of that
module plus ``re``. The user's code is trusted as OfflineIMAP trusts it; what it raises is caught at
this one boundary and turned into a ConfigError that names the option.
"""

from __future__ import annotations

import re
import sys
import types
from collections.abc import Callable, Mapping
from pathlib import Path

from mailtwin.errors import ConfigError, cut


def describe(exc: BaseException) -> str:
    if isinstance(exc, SyntaxError):
        where = f" (line {exc.lineno})" if exc.lineno else ""
        return f"invalid Python: {exc.msg}{where}"
    return cut(f"{type(exc).__name__}: {exc}")


class PythonEnv:
    """The names a config's Python expressions see: the pythonfile's, then ``re``."""

    def __init__(self, names: Mapping[str, object] | None = None) -> None:
        self._names: dict[str, object] = dict(names or {})

    @classmethod
    def load(cls, path: Path | None) -> PythonEnv:
        if path is None:
            return cls()
        try:
            source = path.read_bytes()
        except OSError as exc:
            raise ConfigError(
                f"cannot read {path}: {exc.strerror or exc}", "general", "pythonfile"
            ) from None
        # OfflineIMAP uses imp.load_module("<none>", ...): a module object registered in
        # sys.modules, so dataclasses, pickling and the like work in the user's file
        module = types.ModuleType("<none>")
        module.__file__ = str(path)
        sys.modules[module.__name__] = module
        try:
            code = compile(source, str(path), "exec")
            exec(code, module.__dict__)
        except Exception as exc:  # the user's own code: anything it raises is a config error
            raise ConfigError(
                f"loading {path} failed: {describe(exc)}", "general", "pythonfile"
            ) from exc
        return cls(vars(module))

    def eval(self, text: str, section: str, option: str) -> object:
        """``eval(text)`` with the pythonfile's names and ``re``, as repository/Base.py does."""
        names = dict(self._names)
        names["re"] = re
        try:
            code = compile(text, f"[{section}] {option}", "eval")
            return eval(code, names)
        except Exception as exc:  # the user's expression: anything it raises is a config error
            raise ConfigError(f"cannot evaluate: {describe(exc)}", section, option) from exc


class FolderFilter:
    """``folderfilter`` as a ``Callable[[str], bool]`` (OfflineIMAP accepts any truthy result)."""

    __slots__ = ("_fn", "expr", "section")

    def __init__(self, section: str, expr: str | None, fn: Callable[[str], object] | None):
        self.section = section
        self.expr = expr  # as written; None: every folder
        self._fn = fn

    def __call__(self, folder: str) -> bool:
        if self._fn is None:
            return True
        try:
            return bool(self._fn(folder))
        except Exception as exc:  # the user's function: a failure names the option and folder
            raise ConfigError(
                f"failed on folder {folder!r}: {describe(exc)}", self.section, "folderfilter"
            ) from exc

    def __repr__(self) -> str:
        return f"FolderFilter({self.expr!r})"


class NameTrans:
    """``nametrans`` as a ``Callable[[str], str]``: this side's folder name to the other side's."""

    __slots__ = ("_fn", "expr", "section")

    def __init__(self, section: str, expr: str | None, fn: Callable[[str], object] | None):
        self.section = section
        self.expr = expr  # as written; None: names unchanged
        self._fn = fn

    def __call__(self, folder: str) -> str:
        if self._fn is None:
            return folder
        try:
            name = self._fn(folder)
        except Exception as exc:  # the user's function: a failure names the option and folder
            raise ConfigError(
                f"failed on folder {folder!r}: {describe(exc)}", self.section, "nametrans"
            ) from exc
        if not isinstance(name, str):
            raise ConfigError(
                f"returned {type(name).__name__}, not a folder name, for {folder!r}",
                self.section,
                "nametrans",
            )
        return name

    def __repr__(self) -> str:
        return f"NameTrans({self.expr!r})"


def folder_filter(env: PythonEnv, section: str, expr: str | None) -> FolderFilter:
    if expr is None:
        return FolderFilter(section, None, None)
    fn = env.eval(expr, section, "folderfilter")
    if not callable(fn):
        raise ConfigError(
            f"is a {type(fn).__name__}, not a function of a folder name "
            "(e.g. lambda folder: folder != 'Trash')",
            section,
            "folderfilter",
        )
    return FolderFilter(section, expr, fn)


def name_trans(env: PythonEnv, section: str, expr: str | None) -> NameTrans:
    if expr is None:
        return NameTrans(section, None, None)
    fn = env.eval(expr, section, "nametrans")
    if not callable(fn):
        raise ConfigError(
            f"is a {type(fn).__name__}, not a function of a folder name "
            "(e.g. lambda folder: re.sub('^INBOX\\.', '', folder))",
            section,
            "nametrans",
        )
    return NameTrans(section, expr, fn)


def folder_includes(
    env: PythonEnv, section: str, expr: str | None, option: str = "folderincludes"
) -> tuple[str, ...]:
    """A list of folder names (folderincludes, idlefolders)."""
    if expr is None:
        return ()
    value = env.eval(expr, section, option)
    # a bare string would make OfflineIMAP's ``name in folderincludes`` match substrings
    if isinstance(value, list | tuple | set | frozenset) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise ConfigError(
        f"is a {type(value).__name__}, not a list of folder names (e.g. ['INBOX', 'Sent'])",
        section,
        option,
    )
