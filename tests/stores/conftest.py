"""Make store_workers importable by name, so multiprocessing children can find it."""

from __future__ import annotations

import sys
from pathlib import Path

# --import-mode=importlib leaves sys.path alone; spawned workers import store_workers by name.
_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)
