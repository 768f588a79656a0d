"""Public test helpers for code that embeds incidentflow.

``FrozenClock`` makes time stand still until you move it, so SLA checks and the
post-deploy watch window can be tested without waiting. ``RecordingNotifier``
keeps every notification for assertions.
"""

from ..notifiers.basic import RecordingNotifier
from ._clock import FrozenClock

__all__ = ["FrozenClock", "RecordingNotifier"]
