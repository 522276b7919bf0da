import pytest
from django.core.exceptions import ImproperlyConfigured

from kamen_portal.env import env_bool, env_int, env_list


@pytest.mark.parametrize("raw", ["1", "true", "TRUE", "yes", "on", " True "])
def test_truthy_values_are_true(monkeypatch, raw):
    monkeypatch.setenv("X_FLAG", raw)
    assert env_bool("X_FLAG", default=False) is True


@pytest.mark.parametrize("raw", ["0", "false", "no", "off"])
def test_falsy_values_are_false(monkeypatch, raw):
    monkeypatch.setenv("X_FLAG", raw)
    assert env_bool("X_FLAG", default=True) is False


@pytest.mark.parametrize("raw", ["ture", "2", "enabled", "nope"])
def test_a_misspelt_boolean_is_an_error_not_false(monkeypatch, raw):
    monkeypatch.setenv("X_FLAG", raw)
    with pytest.raises(ImproperlyConfigured, match="X_FLAG"):
        env_bool("X_FLAG", default=False)


def test_unset_boolean_takes_the_default(monkeypatch):
    monkeypatch.delenv("X_FLAG", raising=False)
    assert env_bool("X_FLAG", default=True) is True


def test_bad_integer_is_an_error(monkeypatch):
    monkeypatch.setenv("X_INT", "12a")
    with pytest.raises(ImproperlyConfigured):
        env_int("X_INT", default=1)


def test_list_splits_and_trims(monkeypatch):
    monkeypatch.setenv("X_LIST", " a.example, b.example ,,")
    assert env_list("X_LIST", default=[]) == ["a.example", "b.example"]
