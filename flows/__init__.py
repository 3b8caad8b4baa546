"""Orchestration at the edges: storage, state, Prefect flows and the command line."""
