"""Orchestration at the edges: storage, state, Prefect flows and the command line."""

from flows.memory import use_system_allocator

# Every process that runs a flow, a CLI command or a worker imports this package first.
use_system_allocator()
