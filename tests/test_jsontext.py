"""The compact encoder writes what ``json.dumps`` writes, call after call, from any thread."""

from __future__ import annotations

import json
import math
import threading
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from incidentflow._jsontext import compact_encoder

_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text()
_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


def _reference(value: Any, *, allow_nan: bool = True) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=allow_nan)


@given(st.lists(_values, min_size=1, max_size=5))
def test_it_writes_what_json_dumps_writes_on_every_call(values: list[Any]) -> None:
    dumps = compact_encoder()
    for value in values:  # one encoder, many calls: nothing carries over
        assert dumps(value) == _reference(value)


@given(_values)
def test_without_nan_it_refuses_what_json_dumps_refuses(value: Any) -> None:
    dumps = compact_encoder(allow_nan=False)
    try:
        expected = _reference(value, allow_nan=False)
    except ValueError:
        with pytest.raises(ValueError, match="not JSON compliant"):
            dumps(value)
    else:
        assert dumps(value) == expected


def test_a_failed_call_leaves_nothing_behind() -> None:
    dumps = compact_encoder(allow_nan=False)
    with pytest.raises(TypeError, match="not JSON serializable"):
        dumps({"a": [1, object()]})
    with pytest.raises(ValueError, match="not JSON compliant"):
        dumps([math.inf])
    value = {"a": [1, 2], "b": {"c": "é"}}
    assert dumps(value) == _reference(value)
    assert dumps(value) == _reference(value)  # the same object twice: no false "circular" error


def test_threads_share_one_encoder() -> None:
    dumps = compact_encoder()
    values = [{"n": n, "items": [str(n)] * (n % 7)} for n in range(200)]
    wrong: list[int] = []

    def work() -> None:
        for _ in range(20):
            for n, value in enumerate(values):
                if dumps(value) != _reference(value):
                    wrong.append(n)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wrong == []
