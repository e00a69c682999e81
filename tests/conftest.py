"""Test-wide settings: a private dataset cache, so tests never read or fill the user's cache."""

from __future__ import annotations

import os
import tempfile

os.environ.setdefault("NNCTL_CACHE_DIR", tempfile.mkdtemp(prefix="nnctl-test-cache-"))
