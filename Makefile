# Shortcuts over dev.py (which needs only Python 3.11 and pip). `make` lists them.
PY ?= python3

help: ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

demo: ## set up, convert the real samples, print the seed template query's answer
	$(PY) dev.py demo

test: ## set up, lint, type-check, run every test
	$(PY) dev.py test

lint: ## ruff and mypy only
	$(PY) dev.py setup && .venv/bin/ruff check . && .venv/bin/ruff format --check . && .venv/bin/mypy

bench: ## ctparquet ingest vs DuckDB's best, 1 and 2 cores, and start-up (300k events, medians of 3, ~8 min)
	$(PY) dev.py setup && .venv/bin/python -m tests.benchmarks --events 300000 --cores 1 2 --repeat 3 --startup

bench-stages: ## where one core's time goes: inflate, parse, columns, place, encode, write
	$(PY) dev.py setup && POLARS_MAX_THREADS=1 .venv/bin/python -m tests.benchmarks.stages --objects 700

bench-floor: ## what a free Parquet encoder would give: the CLI with and without encoding, and DuckDB (~4 min)
	$(PY) dev.py setup && .venv/bin/python -m tests.benchmarks.without_encoding --cores 1 2 --repeat 5

bench-query: ## bytes the seed's queries read: raw gzip JSON vs our table
	$(PY) dev.py setup && .venv/bin/python -m tests.benchmarks.query_bytes --events 200000

bench-startup: ## every subcommand's start-up (exec to exit, no Prefect API), median of 5
	$(PY) dev.py setup && .venv/bin/python -m tests.benchmarks.startup --repeat 5

bench-s3: ## S3 requests of scheduled runs over 10,000 objects of history (moto)
	$(PY) dev.py setup && .venv/bin/python -m tests.benchmarks.s3_requests --objects 10000

.PHONY: help demo test lint bench bench-floor bench-stages bench-query bench-s3 bench-startup
