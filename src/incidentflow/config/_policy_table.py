"""``[policy]``: read and described through the TOML forms the Policy declares for its fields."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

from .._policy import Policy, toml_forms
from .._toml import unknown_key_message
from ..exceptions import ConfigError
from ._common import key_text, where

__all__ = ["POLICY_HELP", "POLICY_KEYS", "policy_from_table"]

#: The keys ``[policy]`` accepts, in the order of Policy's fields.
POLICY_KEYS = tuple(form.key for form in toml_forms().values())
#: Each ``[policy]`` key's one-line help, by dotted key (``policy.watch_window_minutes``).
POLICY_HELP = MappingProxyType({f"policy.{form.key}": form.help for form in toml_forms().values()})


def policy_from_table(
    data: Any, source: str, prefix: Sequence[str], elsewhere: Mapping[str, str]
) -> Policy:
    """The Policy of a ``[policy]`` table at ``prefix`` in the file ``source``.

    An unknown key is refused with a hint at the table it belongs in
    (``elsewhere``: key → table); values are read by :meth:`Policy.from_dict`.
    """
    if isinstance(data, Mapping):
        unknown = sorted(str(key) for key in data if key not in POLICY_KEYS)
        if unknown:
            raise ConfigError(
                where(source, key_text([*prefix, unknown[0]])),
                unknown_key_message(unknown, POLICY_KEYS, f"[{key_text(prefix)}]", elsewhere),
            )
    return Policy.from_dict(data, source=source, prefix=prefix)
