"""Array files on disk: written atomically, read with one clear error when damaged.

Two rules for every file tinyeffnet writes (checkpoints, weights):

- **Atomic writes.** The bytes go to a temporary file in the same folder, which is flushed and
  fsynced, then renamed over the old file (``os.replace`` is atomic on POSIX and Windows). A crash
  or SIGKILL at any moment leaves either the old file or the new one, never a torn one.
- **Honest reads.** A truncated, bit-flipped, empty or foreign file raises ``BadFileError`` (a
  ``ValueError``) whose one-line message names the file and what is wrong with it, instead of a
  ``BadZipFile``/``EOFError`` traceback from inside zipfile. Nothing is ever unpickled.
"""
from __future__ import annotations

import os
import zipfile
import zlib
from pathlib import Path

import numpy as np


class BadFileError(ValueError):
    """A file exists but cannot be read as what it claims to be (damaged, empty, wrong format)."""


def write_atomic(path, write) -> None:
    """Call ``write(f)`` on a temporary binary file next to ``path``, then rename it over ``path``.

    If ``write`` raises, the temporary file is removed and ``path`` is left as it was.
    """
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def save_npz_atomic(path, arrays: dict) -> None:
    """``np.savez`` of ``arrays`` (name -> array), written atomically (see the module docstring)."""
    write_atomic(path, lambda f: np.savez(f, **arrays))


def read_npz(path, what: str = "file") -> dict:
    """Every array of an ``.npz`` file, as name -> array; ``what`` names the file in errors
    ("checkpoint", "weights file", ...).

    Raises FileNotFoundError if ``path`` does not exist, and BadFileError (one line: the file and
    the problem) if it is empty, not an npz archive, truncated, fails its CRC check, or holds
    pickled objects.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} {os.fspath(path)} does not exist")
    size = path.stat().st_size
    if size == 0:
        raise BadFileError(f"{what} {os.fspath(path)} is empty (0 bytes): it was never written completely")
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic not in (b"PK\x03\x04", b"PK\x05\x06"):        # every zip archive starts so
        kind = "a single .npy array" if magic == b"\x93NUM" else "not a zip archive"
        raise BadFileError(f"{what} {os.fspath(path)} is not an .npz file ({kind}; {size} bytes)")
    try:
        with np.load(path, allow_pickle=False) as archive:
            # Reading every member here makes damage anywhere in the file show up now, not later.
            return {key: archive[key] for key in archive.files}
    except ValueError as error:
        if "allow_pickle" in str(error) or "pickled" in str(error):
            raise BadFileError(f"refused to load {what} {os.fspath(path)}: it holds pickled objects, "
                               f"not plain arrays") from None
        raise BadFileError(f"{what} {os.fspath(path)} is damaged or not an .npz archive ({size} bytes): "
                           f"{error}") from None
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, KeyError) as error:
        reason = str(error) or type(error).__name__
        raise BadFileError(f"{what} {os.fspath(path)} is damaged or not an .npz archive ({size} bytes): "
                           f"{reason}") from None
