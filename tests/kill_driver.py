"""Run ``ctparquet`` and freeze it in the middle of a write, so a test can SIGKILL it there.

``KILL_AT=pipe:N`` freezes in the N-th file write after writing half the bytes;
``KILL_AT=mv:N`` freezes just after the N-th move into place. The driver writes
the path concerned to ``KILL_MARKER`` and sleeps; the test kills it. Nothing
else changes: the real CLI runs, on the real local filesystem.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

from fsspec.implementations.local import LocalFileSystem

from flows.cli import main


def _freeze(path: str) -> None:
    Path(os.environ["KILL_MARKER"]).write_text(path)
    time.sleep(3600)


def install(kill_at: str) -> None:
    operation, nth = kill_at.split(":")
    count = 0
    pipe_file, mv = LocalFileSystem.pipe_file, LocalFileSystem.mv

    def counted() -> bool:
        nonlocal count
        count += 1
        return count == int(nth)

    def frozen_pipe_file(self: LocalFileSystem, path: str, value: bytes, **kwargs: Any) -> None:
        if operation == "pipe" and counted():
            with open(path, "wb") as file:
                file.write(value[: len(value) // 2])
                file.flush()
                os.fsync(file.fileno())
            _freeze(path)
        pipe_file(self, path, value, **kwargs)

    def frozen_mv(self: LocalFileSystem, path1: str, path2: str, **kwargs: Any) -> None:
        mv(self, path1, path2, **kwargs)
        if operation == "mv" and counted():
            _freeze(path2)

    LocalFileSystem.pipe_file = frozen_pipe_file
    LocalFileSystem.mv = frozen_mv


if __name__ == "__main__":
    install(os.environ["KILL_AT"])
    sys.argv[0] = "ctparquet"
    main()
