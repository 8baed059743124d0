"""Writing files safely: only regular files or new paths, never an input, atomically.

Every file gaussmix writes (model files, the command line's tables, figures
and reports) goes through :func:`atomic_write`: the content is written to a
new file beside the target and moved over it at the end, so an interrupted
write leaves an existing file intact. A new file gets the permissions any
other new file gets (``0o666`` less the umask); a replaced file keeps its
own. A path that names a directory, a device, a FIFO or a socket is
refused before anything is written, and so is a path that is one of the
inputs of the same operation.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from collections.abc import Iterable, Iterator
from typing import IO


class OutputPathError(ValueError):
    """An output path cannot be written; the message names the path and the reason."""


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def same_file(a: str, b: str) -> bool:
    """Whether two paths name the same existing file (through links, relative paths, ...)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def check_output_path(path: str, inputs: Iterable[str] = (), what: str = "output") -> str:
    """The real path to write ``path`` to; raises :class:`OutputPathError` if it must not be written.

    A symbolic link to a regular file is followed (the file it points to is
    replaced and the link kept).
    """
    path = os.fspath(path)
    for source in inputs:
        if source and source != "-" and same_file(path, source):
            raise OutputPathError(f"{path}: the {what} would overwrite the input {source}; choose another file name")
    target = os.path.realpath(path)
    try:
        mode = os.stat(target).st_mode
    except FileNotFoundError:
        directory = os.path.dirname(target) or "."
        if not os.path.isdir(directory):
            raise OutputPathError(f"{path}: directory {os.path.dirname(path) or '.'} does not exist") from None
        return target
    except OSError as exc:
        raise OutputPathError(f"{path}: cannot write the {what} ({exc.strerror or exc})") from None
    if not stat.S_ISREG(mode):
        raise OutputPathError(f"{path}: is {_kind(mode)}; the {what} is written only to a regular file or a new path")
    return target


def _new_file_mode(existing: str) -> int:
    try:
        return stat.S_IMODE(os.stat(existing).st_mode)
    except FileNotFoundError:
        return -1


@contextlib.contextmanager
def atomic_write(path: str, mode: str = "wb", inputs: Iterable[str] = (), what: str = "output",
                 encoding: str | None = None, newline: str | None = None) -> Iterator[IO]:
    """Open a temporary file beside ``path`` for writing; move it over ``path`` when the block ends.

    On an exception the temporary file is removed and ``path`` is untouched.
    """
    target = check_output_path(path, inputs, what)
    directory = os.path.dirname(target) or "."
    keep_mode = _new_file_mode(target)
    while True:
        temporary = os.path.join(directory, f".{os.path.basename(target)}.{secrets.token_hex(6)}.tmp")
        try:
            # 0o666 is reduced by the umask, as for any new file.
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            break
        except FileExistsError:  # pragma: no cover - a 48-bit name collision
            continue
    try:
        with os.fdopen(fd, mode, encoding=encoding, newline=newline) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        if keep_mode >= 0:
            os.chmod(temporary, keep_mode)
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
