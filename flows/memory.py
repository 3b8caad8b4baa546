"""Give freed memory back to the system: a long run's RSS follows its batch, not its past.

Measured on the 5.2 GB corpus with 2 workers (peak RSS of the three processes
together): pyarrow's default pool (mimalloc) 1,116 MB; the system allocator
1,001 MB; plus trimming glibc's free lists after each batch, 933 MB. The cost is
about 3% of one core's throughput (39,600 vs 41,000 events/s). Dask's workers
trim the same way.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

import pyarrow as pa


def use_system_allocator() -> None:
    """Arrow buffers from malloc, which ``release_freed_memory`` can hand back.

    A pool the user chose (``ARROW_DEFAULT_MEMORY_POOL``) is left alone.
    """
    if "ARROW_DEFAULT_MEMORY_POOL" not in os.environ:
        pa.set_memory_pool(pa.system_memory_pool())


def _load_libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return libc if libc is not None and hasattr(libc, "malloc_trim") else None


_libc = _load_libc()


def release_freed_memory() -> None:
    """Return glibc's free memory to the system (a no-op where there is no glibc)."""
    if _libc is not None:
        _libc.malloc_trim(0)
