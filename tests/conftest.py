import os
from pathlib import Path

# Tests read the staged copy beside the checkout unless told otherwise; it is read-only, so extracted
# files go to a cache of the test session's own.
_ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("LIGHTNING_IMPL_DATA", str(_ROOT.parent / "shared" / "data"))
os.environ.setdefault("KERAS_BACKEND", "torch")
