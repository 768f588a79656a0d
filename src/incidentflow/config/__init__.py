"""Configuration: ``incidentflow.toml``, or ``[tool.incidentflow]`` in ``pyproject.toml``.

A team keeps its process settings in one file next to its code: the store, the
folders for the files people read, the policy, delivery and retries, the
notifiers and who hears what. :func:`load_config` finds and reads it into a
:class:`Config`; :meth:`Config.flow_arguments` gives the keyword arguments of
the :class:`~incidentflow.IncidentFlow` it describes
(``IncidentFlow.from_config`` does both).

The file is read with :mod:`tomllib` into strict tables (unknown keys refused,
no silent coercion of ``"15"`` to 15); ``[policy]`` is read through the TOML
forms the :class:`~incidentflow.Policy` declares for its own fields. Whatever
is wrong becomes one :class:`~incidentflow.ConfigError` whose key is
``"<file>: <dotted.key>"`` and whose message says what the key accepts.

Secrets never sit in the file: a ``*_env`` key names the environment variable
that holds one, read when the flow's arguments are built.

Precedence, strongest first: a keyword passed to :meth:`Config.flow_arguments`
(the command line's flags), the environment (``INCIDENTFLOW_URL``), the
configuration file, the defaults.

>>> from incidentflow.config import Config
>>> Config().policy.watch_window, Config().deliver_inline
(datetime.timedelta(seconds=900), True)
"""

from ._config import Config
from ._files import CONFIG_ENV, CONFIG_FILE
from ._load import load_config
from ._notifiers import (
    EmailNotifierSpec,
    LogNotifierSpec,
    NotifierSpec,
    SlackNotifierSpec,
    WebhookNotifierSpec,
)
from ._routes import routes_from_toml
from ._starter import default_config_toml

__all__ = [
    "CONFIG_ENV",
    "CONFIG_FILE",
    "Config",
    "EmailNotifierSpec",
    "LogNotifierSpec",
    "NotifierSpec",
    "SlackNotifierSpec",
    "WebhookNotifierSpec",
    "default_config_toml",
    "load_config",
    "routes_from_toml",
]
