"""Arrow buffers come from malloc, so freed memory can go back to the system."""

from __future__ import annotations

import sys

import pyarrow as pa

import flows
from flows import memory


def test_importing_flows_puts_arrow_on_the_system_allocator(monkeypatch):
    monkeypatch.delenv("ARROW_DEFAULT_MEMORY_POOL", raising=False)
    assert flows  # imported first by every entry point
    memory.use_system_allocator()
    assert pa.default_memory_pool().backend_name == "system"


def test_a_pool_the_user_chose_is_left_alone(monkeypatch):
    chosen: list[pa.MemoryPool] = []
    monkeypatch.setenv("ARROW_DEFAULT_MEMORY_POOL", "jemalloc")
    monkeypatch.setattr(pa, "set_memory_pool", chosen.append)
    memory.use_system_allocator()
    assert chosen == []


def test_freed_memory_is_handed_back_through_glibc_on_linux():
    if sys.platform == "linux":  # glibc here and in CI; elsewhere a no-op
        assert memory._libc is not None
    buffers = [pa.allocate_buffer(1 << 20) for _ in range(8)]
    del buffers
    memory.release_freed_memory()
