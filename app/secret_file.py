"""The secret key generated beside a SQLite database when RELANCE_SECRET_KEY is unset.

Embedded installs (`make run`, the Docker image on its volume) should not share a public key
that lets anyone forge page tokens or decrypt stored webhook secrets, nor ask for one before
the first start: the first process writes 32 random bytes to `<database>.secret-key` (mode
0600) and every later one reads them. The key lives and is backed up with the database it
protects.
"""

import os
import secrets
import stat
import time
from pathlib import Path

SUFFIX = ".secret-key"
# A racing creator writes the key right after creating the file; a reader that finds the
# file still empty waits this long for it before giving up.
_EMPTY_FILE_WAIT = 5.0


class KeyFileError(Exception):
    """The key file could not be read or created (permissions, missing directory, empty)."""


def key_file_for(database_path: str) -> Path:
    """`relance.db` → `relance.db.secret-key`, in the same directory."""
    return Path(database_path + SUFFIX)


def load_or_create(path: Path) -> tuple[str, bool]:
    """The key stored in `path`, creating it first if there is none; (key, created).

    Concurrent first starts end with one key: O_CREAT|O_EXCL lets exactly one process create
    the file, and the others read what it wrote.
    """
    key = secrets.token_urlsafe(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    except FileExistsError:
        return _read(path), False
    except OSError as exc:
        raise KeyFileError(f"cannot create {path}: {exc.strerror}") from exc
    try:
        # One small write: a reader sees the file empty or whole.
        os.write(fd, f"{key}\n".encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    return key, True


def is_private(path: Path) -> bool:
    """Whether only the owner may read the file (nothing for group and others)."""
    return stat.S_IMODE(path.stat().st_mode) & 0o077 == 0


def _read(path: Path) -> str:
    deadline = time.monotonic() + _EMPTY_FILE_WAIT
    while True:
        try:
            key = path.read_text(encoding="ascii").strip()
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not ASCII text"
            raise KeyFileError(f"cannot read {path}: {reason}") from exc
        if key:
            return key
        if time.monotonic() > deadline:
            raise KeyFileError(
                f"{path} is empty: delete it to generate a new key, or put the key in it"
            )
        time.sleep(0.05)
