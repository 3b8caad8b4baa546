"""Settings read from ``CTPARQUET_*`` as pydantic-settings read them, with the standard library.

Each variable is parsed as pydantic did (ints, floats, the bool words, the Literal's
choices, a JSON list) when ``Settings()`` is built; a refused value names its variable,
the value and the rule; keywords win over the environment and are checked too.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import pickle
import subprocess
import sys

import pytest

from flows.settings import ENV_PREFIX, Settings, SettingsError

FIELDS = {spec.name: spec for spec in dataclasses.fields(Settings)}


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    """No CTPARQUET_<FIELD> from the caller's environment, in any case."""
    prefix = ENV_PREFIX.lower()
    for variable in list(os.environ):
        name = variable.lower()
        if name.startswith(prefix) and name.removeprefix(prefix) in FIELDS:
            monkeypatch.delenv(variable)


def test_defaults_without_environment_and_every_field_described():
    settings = Settings()
    for name, spec in FIELDS.items():
        factory = spec.default_factory
        default = spec.default if factory is dataclasses.MISSING else factory()
        assert getattr(settings, name) == default
        assert len(spec.metadata["description"]) > 20, name  # the documentation stays with it
    assert (settings.batch_bytes, settings.lookback_days, settings.glue_regions) == (4 << 20, 2, [])
    assert settings.s3_retry_mode == "standard" and settings.sse_kms_bucket_key is True


@pytest.mark.parametrize(
    ("name", "text", "value"),
    [
        ("batch_bytes", "1048576", 1048576),
        ("batch_bytes", " 10 ", 10),
        ("batch_bytes", "+1_000", 1000),
        ("batch_bytes", "10.00", 10),
        ("batch_bytes", "0010", 10),
        ("workers", "3", 3),
        ("lookback_days", "0", 0),
        ("lock_ttl_seconds", "120", 120.0),
        ("lock_ttl_seconds", "1.5e2", 150.0),
        ("lock_ttl_seconds", " .5 ", 0.5),
        ("lock_ttl_seconds", "1_000.5", 1000.5),
        ("lock_wait_seconds", "inf", math.inf),
        ("s3_retry_mode", "adaptive", "adaptive"),
        ("aws_region", "eu-west-1", "eu-west-1"),
        ("aws_region", "", ""),  # an empty variable is an empty string, not unset
        ("aws_profile", "null", "null"),  # no JSON for strings
        ("glue_regions", '["eu-west-1", "us-east-1"]', ["eu-west-1", "us-east-1"]),
        ("glue_regions", " [] ", []),
        ("glue_regions", "null", []),  # JSON null: the default
    ],
)
def test_each_type_is_parsed_from_its_variable(monkeypatch, name, text, value):
    monkeypatch.setenv(ENV_PREFIX + name.upper(), text)
    read = getattr(Settings(), name)
    assert read == value and type(read) is type(value)


@pytest.mark.parametrize("word", ["1", "true", "yes", "on", "t", "y", "TRUE", "Yes", "oN"])
def test_bool_words_for_true(monkeypatch, word):
    monkeypatch.setenv("CTPARQUET_SSE_KMS_BUCKET_KEY", word)
    assert Settings().sse_kms_bucket_key is True


@pytest.mark.parametrize("word", ["0", "false", "no", "off", "f", "n", "FALSE", "No", "OFF"])
def test_bool_words_for_false(monkeypatch, word):
    monkeypatch.setenv("CTPARQUET_SSE_KMS_BUCKET_KEY", word)
    assert Settings().sse_kms_bucket_key is False


def test_variable_names_in_any_case_and_unknown_ones_ignored(monkeypatch):
    monkeypatch.setenv("ctparquet_batch_objects", "7")
    monkeypatch.setenv("CtParquet_Workers", "2")
    monkeypatch.setenv("CTPARQUET_NO_SUCH_SETTING", "whatever")  # extra="ignore", as before
    monkeypatch.setenv("BATCH_BYTES", "1")  # no prefix: not ours
    settings = Settings()
    assert (settings.batch_objects, settings.workers, settings.batch_bytes) == (7, 2, 4 << 20)


def test_the_environment_is_read_when_settings_are_built(monkeypatch):
    before = Settings()
    monkeypatch.setenv("CTPARQUET_LOOKBACK_DAYS", "5")
    assert (before.lookback_days, Settings().lookback_days) == (2, 5)


@pytest.mark.parametrize(
    ("variable", "text", "rule"),
    [
        ("CTPARQUET_BATCH_BYTES", "abc", "not an integer"),
        ("CTPARQUET_BATCH_BYTES", "10.5", "not an integer"),
        ("CTPARQUET_BATCH_BYTES", "1e3", "not an integer"),
        ("CTPARQUET_BATCH_BYTES", "", "not an integer"),
        ("CTPARQUET_BATCH_BYTES", "0", "must be greater than 0"),
        ("CTPARQUET_WORKERS", "0", "must be greater than 0"),
        ("CTPARQUET_WORKERS", "none", "not an integer"),
        ("CTPARQUET_LOOKBACK_DAYS", "-1", "must be greater than or equal to 0"),
        ("CTPARQUET_MAX_READ_ATTEMPTS", "0", "must be greater than or equal to 1"),
        ("CTPARQUET_LOCK_TTL_SECONDS", "0x10", "not a number"),
        ("CTPARQUET_LOCK_TTL_SECONDS", "-2.5", "must be greater than 0"),
        ("CTPARQUET_LOCK_TTL_SECONDS", "nan", "must be greater than 0"),
        ("CTPARQUET_SSE_KMS_BUCKET_KEY", "maybe", "not a bool"),
        ("CTPARQUET_SSE_KMS_BUCKET_KEY", " true", "not a bool"),
        ("CTPARQUET_S3_RETRY_MODE", "legacy", "not one of 'standard', 'adaptive'"),
        ("CTPARQUET_S3_RETRY_MODE", "Adaptive", "not one of 'standard', 'adaptive'"),
        ("CTPARQUET_GLUE_REGIONS", "eu-west-1", "not JSON"),
        ("CTPARQUET_GLUE_REGIONS", '"eu-west-1"', "not a list of strings"),
        ("CTPARQUET_GLUE_REGIONS", '["eu-west-1", 1]', "not a list of strings"),
        ("ctparquet_batch_bytes", "-1", "must be greater than 0"),  # named as it was set
    ],
)
def test_a_refused_variable_is_named_with_its_value_and_rule(monkeypatch, variable, text, rule):
    monkeypatch.setenv(variable, text)
    with pytest.raises(SettingsError) as refused:
        Settings()
    assert str(refused.value).startswith(f"{variable}={text!r}: {rule}")  # bools list the words
    assert isinstance(refused.value, ValueError)  # as pydantic's ValidationError was


def test_every_refused_value_is_reported_at_once(monkeypatch):
    monkeypatch.setenv("CTPARQUET_S3_MAX_ATTEMPTS", "0")
    monkeypatch.setenv("CTPARQUET_BATCH_BYTES", "big")
    with pytest.raises(SettingsError) as refused:
        Settings()
    assert refused.value.problems == (  # in the fields' order
        "CTPARQUET_BATCH_BYTES='big': not an integer",
        "CTPARQUET_S3_MAX_ATTEMPTS='0': must be greater than 0",
    )


def test_a_command_refuses_a_bad_variable_by_name_with_its_failure_status(tmp_path):
    from flows.cli import EXIT_FAILED

    (tmp_path / "AWSLogs").mkdir()
    run = subprocess.run(
        [sys.executable, "-m", "flows.cli", "ingest", "AWSLogs", "lake", "--no-prefect", "--json"],
        cwd=tmp_path,
        env={**os.environ, "CTPARQUET_BATCH_BYTES": "4MiB"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == EXIT_FAILED, run.stderr
    message = "SettingsError: CTPARQUET_BATCH_BYTES='4MiB': not an integer"
    assert json.loads(run.stdout.splitlines()[-1]) == {"error": message}


def test_keywords_win_over_the_environment_even_a_refused_one(monkeypatch):
    monkeypatch.setenv("CTPARQUET_BATCH_OBJECTS", "not a number")
    monkeypatch.setenv("CTPARQUET_LOOKBACK_DAYS", "5")
    settings = Settings(batch_objects=3, lookback_days=0)
    assert (settings.batch_objects, settings.lookback_days) == (3, 0)
    monkeypatch.setenv("CTPARQUET_READ_CONCURRENCY", "4")
    assert Settings(batch_objects=3).read_concurrency == 4  # the others still from it


@pytest.mark.parametrize(
    ("keywords", "problem"),
    [
        ({"batch_bytes": 0}, "Settings(batch_bytes=0): must be greater than 0"),
        ({"batch_bytes": "5"}, "Settings(batch_bytes='5'): not an integer"),
        ({"batch_bytes": True}, "Settings(batch_bytes=True): not an integer"),
        ({"workers": 1.0}, "Settings(workers=1.0): not an integer"),
        ({"lock_ttl_seconds": -1}, "Settings(lock_ttl_seconds=-1): must be greater than 0"),
        ({"sse_kms_bucket_key": 1}, "Settings(sse_kms_bucket_key=1): not a bool"),
        ({"aws_region": 5}, "Settings(aws_region=5): not a string"),
        ({"s3_retry_mode": "x"}, "Settings(s3_retry_mode='x'): not one of 'standard', 'adaptive'"),
        (
            {"glue_regions": "eu-west-1"},
            "Settings(glue_regions='eu-west-1'): not a list of strings",
        ),
        ({"batch_objects": None}, "Settings(batch_objects=None): not an integer"),
    ],
)
def test_keywords_are_checked_too(keywords, problem):
    with pytest.raises(SettingsError) as refused:
        Settings(**keywords)
    assert refused.value.problems == (problem,)


def test_keywords_of_the_field_types_are_taken():
    regions = ("eu-west-1",)  # a tuple, as pydantic took it
    settings = Settings(lock_ttl_seconds=120, glue_regions=regions, workers=None)  # type: ignore[arg-type]
    assert settings.lock_ttl_seconds == 120.0 and type(settings.lock_ttl_seconds) is float
    assert settings.glue_regions == ["eu-west-1"] and settings.workers is None
    with pytest.raises(TypeError, match="lokback_days"):
        Settings(lokback_days=0)  # type: ignore[call-arg]  # a typo is not ignored
    with pytest.raises(TypeError):
        Settings(4096)  # type: ignore[call-arg]  # keywords only


def test_replace_changes_a_copy_checked_without_the_environment(monkeypatch):
    settings = Settings(batch_objects=2, glue_regions=["eu-west-1"])
    monkeypatch.setenv("CTPARQUET_BATCH_OBJECTS", "9")
    monkeypatch.setenv("CTPARQUET_WORKERS", "refused if read")
    changed = dataclasses.replace(settings, workers=3)
    assert (changed.workers, changed.batch_objects, changed.glue_regions) == (3, 2, ["eu-west-1"])
    assert settings.workers is None and changed != settings
    with pytest.raises(SettingsError, match=r"^Settings\(workers=0\): must be greater than 0$"):
        dataclasses.replace(settings, workers=0)


def test_equal_by_value_frozen_and_pickled_whole(monkeypatch):
    settings = Settings(lock_ttl_seconds=2, glue_regions=["eu-west-1"], s3_retry_mode="adaptive")
    assert settings == Settings(
        lock_ttl_seconds=2.0, glue_regions=["eu-west-1"], s3_retry_mode="adaptive"
    )
    assert settings != Settings()
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.workers = 2  # type: ignore[misc]
    monkeypatch.setenv("CTPARQUET_LOCK_TTL_SECONDS", "99")  # a Dask worker's environment
    copied = pickle.loads(pickle.dumps(settings))
    assert copied == settings and copied.lock_ttl_seconds == 2.0  # not read again
    error = pickle.loads(pickle.dumps(SettingsError("CTPARQUET_WORKERS='x': not an integer")))
    assert isinstance(error, SettingsError) and error.problems == (
        "CTPARQUET_WORKERS='x': not an integer",
    )


def test_the_ingest_path_imports_no_pydantic():
    """pydantic and pydantic-settings were 0.12-0.15 s of every command's start-up."""
    probe = "import sys, flows.run; print(sorted({m.split('.')[0] for m in sys.modules}))"
    found = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    assert "'pydantic" not in found and "'dotenv'" not in found
