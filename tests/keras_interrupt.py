"""Run a Keras entry point that kills its own process with SIGKILL at a chosen point, once: the Keras tests'
stand-in for a power cut (Keras runs take no callbacks from their recipe, so the point is patched in).

    python -c "import keras_interrupt; keras_interrupt.main()" MODULE POINT EPOCH BATCH ONCE -- ARGV...

POINT: ``train_batch`` (before batch BATCH of epoch EPOCH), ``saving`` (the epoch's weights written, its
last.json not yet), ``test`` (the best epoch loaded, before the test). ``ONCE`` is a file written before the kill.
"""

from __future__ import annotations

import importlib
import os
import signal
import sys
from pathlib import Path


def _kill(once: Path) -> None:
    if not once.exists():
        once.write_text("killed\n")
        os.kill(os.getpid(), signal.SIGKILL)


def main() -> None:
    module_name, point, epoch, batch, once = sys.argv[1:6]
    argv = sys.argv[sys.argv.index("--") + 1 :]
    epoch, batch, once = int(epoch), int(batch), Path(once)
    module = importlib.import_module(module_name)
    import keras

    from keras_ref import fit

    class KillAt(keras.callbacks.Callback):
        def on_epoch_begin(self, e, logs=None):
            self.epoch = e

        def on_train_batch_begin(self, b, logs=None):
            if point == "train_batch" and self.epoch == epoch and b == batch:
                _kill(once)

    original_fit, original_write = module.fit_and_test, fit.write_json

    def fit_and_test(*args, callbacks=(), test=None, **kwargs):
        def killing_test():
            if point == "test":
                _kill(once)
            return test()

        return original_fit(*args, callbacks=[*callbacks, KillAt()], test=killing_test, **kwargs)

    def write_json(path, value):
        if point == "saving" and Path(path).name == "last.json" and value.get("epoch") == epoch:
            _kill(once)
        return original_write(path, value)

    module.fit_and_test, fit.write_json = fit_and_test, write_json
    module.main(argv)
