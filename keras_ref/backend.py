"""Which Keras backend keras_ref runs on: torch (the default), JAX or TensorFlow, chosen the Keras way.

Keras fixes its backend when it is first imported, from ``KERAS_BACKEND``. keras_ref/__init__.py calls
``choose()`` before anything imports Keras: the entry points' ``--backend NAME`` flag (read from the command line
of ``python -m keras_ref.<entry point>`` / ``python -m parity...`` while the package is being imported), else
``KERAS_BACKEND``, else torch. Nothing here imports Keras or a backend.
"""

from __future__ import annotations

import importlib.util
import os
import sys

BACKENDS = ("torch", "jax", "tensorflow")  # what keras_ref runs on; torch is always installed (the data layer)
DEFAULT = "torch"
EXTRA = {"torch": None, "jax": "jax", "tensorflow": "tensorflow"}  # pip install -e ".[EXTRA]"


class BackendError(RuntimeError):
    """A backend keras_ref cannot run on, or cannot switch to in this process; the message names it."""


def installed() -> list[str]:
    """The backends whose package is importable here, in BACKENDS order."""
    return [b for b in BACKENDS if importlib.util.find_spec(b) is not None]


def _from_argv(argv: list[str]) -> str | None:
    """The value of ``--backend NAME`` / ``--backend=NAME`` on a command line (the last one wins), else None."""
    found = None
    for i, arg in enumerate(argv):
        if arg == "--backend" and i + 1 < len(argv):
            found = argv[i + 1]
        elif arg.startswith("--backend="):
            found = arg.split("=", 1)[1]
    return found


def check(name: str) -> str:
    if name not in BACKENDS:
        raise BackendError(f"Keras backend {name!r} is not one keras_ref runs on; choose one of {', '.join(BACKENDS)}")
    if importlib.util.find_spec(name) is None:
        extra = f' (pip install -e ".[{EXTRA[name]}]")' if EXTRA[name] else ""
        raise BackendError(f"Keras backend {name!r} is not installed{extra}")
    return name


def choose() -> str:
    """Set ``KERAS_BACKEND`` before Keras is imported and return it; refuse an unknown or missing backend, or one
    that differs from the backend Keras already runs on in this process."""
    wanted = _from_argv(sys.argv[1:]) if sys.argv and sys.argv[0] == "-m" else None  # python -m, being imported
    if wanted is not None:
        os.environ["KERAS_BACKEND"] = wanted
    os.environ.setdefault("KERAS_BACKEND", DEFAULT)
    try:
        name = check(os.environ["KERAS_BACKEND"])
        if "keras" in sys.modules:
            _refuse_another(sys.modules["keras"], name)
    except BackendError as err:
        if wanted is None:  # a library import: the caller decides
            raise
        print(f"error: --backend {wanted}: {err}", file=sys.stderr)  # a command line: one line, no traceback
        sys.exit(2)
    if name == "tensorflow":
        # torch's compiler stack loads Triton's native library on first use (the optimizers reach it); loaded after
        # TensorFlow's it crashes the process (segmentation fault, measured with tensorflow-cpu 2.21 and torch
        # 2.14). Loading it first, before Keras imports TensorFlow, avoids the clash.
        import torch._dynamo  # noqa: F401
    return name


def require(name: str | None) -> None:
    """For an entry point's parsed ``--backend``: the Keras backend of this process must be ``name`` (None: any).
    Reached when main(argv) is called inside a process whose Keras was already imported."""
    if name is None:
        return
    import keras

    _refuse_another(keras, check(name))


def _refuse_another(keras, name: str) -> None:
    running = keras.backend.backend()
    if running != name:
        raise BackendError(f"Keras already runs on {running} in this process, {name} was asked for: "
                           f"a backend is fixed per process (start a new one with --backend {name})")


def parse_args(parser, argv: list[str] | None):
    """``parser.parse_args(argv)``, then ``--backend`` checked against the one this process runs: a usage error
    (one line, status 2) when it cannot be honoured. Every Keras entry point parses its flags this way."""
    args = parser.parse_args(argv)
    try:
        require(args.backend)
    except BackendError as err:
        parser.error(str(err))
    return args
