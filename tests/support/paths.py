"""Where the repository and the test data files are."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DATA = Path(__file__).resolve().parent / "data"
"""Small outcome tables (CSV) made for the tests."""
