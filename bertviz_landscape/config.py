"""Where Hydra finds the project's configs (conf/ at the repository root)."""

from __future__ import annotations

import os
from pathlib import Path

CONF_DIR = str(Path(os.environ.get("BVL_CONF_DIR", Path(__file__).resolve().parent.parent / "conf")).resolve())
