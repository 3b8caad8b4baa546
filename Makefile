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

.PHONY: help demo test lint
