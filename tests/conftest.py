"""Lets the Python tests import the bed's modules (tests/bed/) by name."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "bed"))
