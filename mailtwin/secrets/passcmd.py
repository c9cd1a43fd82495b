"""``remotepasscmd``: a command whose first line of output is the password (as mbsync's PassCmd,
but run without a shell: the value is split into words as a POSIX shell would, no expansion)."""

from __future__ import annotations

from mailtwin.errors import ConfigError

TIMEOUT = 120.0  # a command may wait for a GPG agent or a keyring to be unlocked


def run(command: str, section: str, option: str = "remotepasscmd") -> str:
    """The first line of the command's standard output, without its line end. A failure is
    one line naming the option; the command's output is never shown (it may hold the secret)."""
    import shlex
    import subprocess

    try:
        argv = shlex.split(command)
    except ValueError as e:
        raise ConfigError(f"cannot split into words: {e}", section, option) from None
    if not argv:
        raise ConfigError("is empty", section, option)
    try:
        proc = subprocess.run(
            argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=TIMEOUT, check=False
        )
    except FileNotFoundError:
        raise ConfigError(f"{argv[0]}: command not found", section, option) from None
    except PermissionError:
        raise ConfigError(f"{argv[0]}: permission denied", section, option) from None
    except subprocess.TimeoutExpired:
        raise ConfigError(f"{argv[0]} gave no password within {TIMEOUT:.0f} s", section,
                          option) from None  # fmt: skip
    if proc.returncode != 0:
        why = f"exit status {proc.returncode}" if proc.returncode > 0 else (
            f"killed by signal {-proc.returncode}")  # fmt: skip
        raise ConfigError(f"{argv[0]} failed ({why})", section, option)
    first = proc.stdout.decode("utf-8", "replace").split("\n", 1)[0].rstrip("\r")
    if not first:
        raise ConfigError(f"{argv[0]} printed no password", section, option)
    return first
