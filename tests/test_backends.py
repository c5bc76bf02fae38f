"""keras_ref on every installed Keras backend: the backend is chosen the Keras way or by --backend, refused by
name when unknown, missing or different from the one this process already runs; parity checks 1-4 hold on each
backend and the planted mistakes fail there as they fail on torch (each backend in its own process)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from keras_ref.backend import BACKENDS, installed

ROOT = Path(__file__).resolve().parents[1]
OTHER = [b for b in installed() if b != "torch"]


def run(code_or_module: list[str], backend: str | None = None, **env) -> subprocess.CompletedProcess:
    environ = {**os.environ, **env}
    environ.pop("KERAS_BACKEND", None)
    if backend:
        environ["KERAS_BACKEND"] = backend
    return subprocess.run([sys.executable, *code_or_module], cwd=ROOT, env=environ, capture_output=True, text=True, timeout=900)


@pytest.mark.slow
def test_torch_is_the_default_and_is_always_installed():
    assert "torch" in installed() and set(installed()) <= set(BACKENDS)
    out = run(["-c", "import keras_ref, keras; print(keras_ref.BACKEND, keras.backend.backend())"])
    assert out.stdout.split() == ["torch", "torch"], out.stderr


def test_an_unknown_or_missing_backend_is_refused_by_name():
    out = run(["-m", "keras_ref.train", "--backend", "theano"])
    assert out.returncode == 2 and out.stderr.strip().splitlines()[-1].startswith("error: --backend theano"), out.stderr
    assert "'theano'" in out.stderr and "Traceback" not in out.stderr
    out = run(["-c", "import keras_ref"], backend="theano")
    assert out.returncode != 0 and "theano" in out.stderr
    for missing in sorted(set(BACKENDS) - set(installed())):
        out = run(["-m", "keras_ref.predict", "--backend", missing, "run", "x.png"])
        assert out.returncode == 2 and f'pip install -e ".[{missing}]"' in out.stderr


@pytest.mark.skipif(not OTHER, reason="only torch is installed")
def test_a_second_backend_in_one_process_is_refused(capsys):
    import keras_ref.train  # this process: torch

    with pytest.raises(SystemExit):
        keras_ref.train.parse_args(["--backend", OTHER[0]])
    assert "already runs on torch" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize("backend", OTHER)
def test_the_flag_selects_the_backend_of_an_entry_point(backend, tmp_path):
    """--backend wins over KERAS_BACKEND; the Keras models build and predict there (numpy in, numpy out)."""
    code = ("import sys; sys.argv = ['-m', '--backend', %r]; import keras_ref, keras, numpy as np;"
            "from keras_ref.models import TWINS; m = TWINS['SpecifiedCNN']((28, 28, 1), 10);"
            "print(keras.backend.backend(), m.predict(np.zeros((2, 28, 28, 1), 'float32'), verbose=0).shape)") % backend
    out = run(["-c", code], backend="torch")
    assert out.stdout.split()[:1] == [backend], out.stderr[-2000:]


@pytest.mark.slow
@pytest.mark.parametrize("backend", OTHER)
def test_checks_1_to_4_pass_on_every_installed_backend(backend, tmp_path):
    """What CI runs beside the torch checks: python -m parity on the backend's own kernels (independent of torch's)."""
    out = run(["-m", "parity", "--backends", backend, "--pairs", "specified_cnn", "denoising_ae", "improved_cnn_mnist",
               "--json", str(tmp_path / "p.json")])
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    result = json.loads((tmp_path / "p.json").read_text())
    assert result["passed"] and list(result["backends"]) == [backend]
    assert f"| check " in out.stdout and f"| {backend} " in out.stdout


PLANTED = r'''
import dataclasses, json, sys
import keras
import parity.transfer as transfer, parity.checks as checks
sys.path.insert(0, "tests")
from test_parity import SPECIFIED, BN, bn_keras, rows_of, failing, _training_rows
out = {}
# transposed kernel: check 3 fails in both directions, naming a conv layer
k2t, t2k = transfer.conv_kernel_to_keras, transfer.conv_kernel_to_torch
transfer.conv_kernel_to_keras = lambda w: w.transpose(3, 2, 1, 0)
transfer.conv_kernel_to_torch = lambda k: k.transpose(3, 2, 1, 0)
rows = rows_of(SPECIFIED, "parameters", "shapes", "equivalence")
out["kernel"] = [failing(rows), rows["3 outputs equal, weights torch -> Keras"].value]
transfer.conv_kernel_to_keras, transfer.conv_kernel_to_torch = k2t, t2k
# flatten order
p, u = transfer._permute_rows, transfer._unpermute_rows
transfer._permute_rows = transfer._unpermute_rows = lambda a, order: a
out["flatten"] = failing(rows_of(SPECIFIED, "equivalence"))
transfer._permute_rows, transfer._unpermute_rows = p, u
# BatchNorm epsilon (check 3), momentum (check 4)
out["epsilon"] = failing(rows_of(dataclasses.replace(BN, keras_model=lambda: bn_keras(eps=1e-3)), "equivalence"))
out["momentum"] = failing(rows_of(dataclasses.replace(BN, keras_model=lambda: bn_keras(momentum=0.99)), "training"))
# summed loss on the Keras side, learning rate x 2 (check 4)
checks.KERAS_LOSSES["cross_entropy"] = lambda: keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction="sum")
out["sum"] = _training_rows(SPECIFIED)["4 training: weights after 20 SGD steps"].number
checks.KERAS_LOSSES["cross_entropy"] = lambda: keras.losses.SparseCategoricalCrossentropy(from_logits=True)
checks.keras_optimizer = lambda lr: keras.optimizers.SGD(learning_rate=lr * 2)
out["lr"] = _training_rows(SPECIFIED)["4 training: weights after 20 SGD steps"].passed
print("RESULT", json.dumps(out))
'''


@pytest.mark.slow
@pytest.mark.parametrize("backend", OTHER)
def test_planted_mistakes_fail_on_every_backend_as_on_torch(backend):
    out = run(["-c", PLANTED], backend=backend)
    line = [x for x in out.stdout.splitlines() if x.startswith("RESULT ")]
    assert line, out.stderr[-3000:]
    r = json.loads(line[0][7:])
    assert r["kernel"][0] == ["3 outputs equal, weights torch -> Keras", "3 outputs equal, weights Keras -> torch"]
    assert "worst layer: conv" in r["kernel"][1]
    assert r["flatten"] == ["3 outputs equal, weights torch -> Keras", "3 outputs equal, weights Keras -> torch"]
    assert "3 hyper-parameters (BatchNorm eps, momentum; Dropout rate)" in r["epsilon"]
    assert set(r["momentum"]) == {"4 training: BatchNorm moving mean",
                                  "4 training: BatchNorm moving variance (torch unbiased, Keras biased)"}
    assert r["sum"] > 1.0 and r["lr"] is False


@pytest.mark.slow
@pytest.mark.parametrize("backend", [b for b in OTHER if b == "jax"])
def test_jax_float64_is_switched_on_for_check_4_only(backend):
    code = ("import jax, keras, numpy as np; import parity.checks as c;"
            "before = jax.config.read('jax_enable_x64');"
            "ctx = c.keras_float64(); ctx.__enter__();"
            "inside = str(keras.layers.Dense(1)(np.ones((1, 2))).dtype); ctx.__exit__(None, None, None);"
            "print(before, inside, jax.config.read('jax_enable_x64'), keras.config.floatx())")
    out = run(["-c", code], backend=backend)
    assert out.stdout.split() == ["False", "float64", "False", "float32"], out.stderr[-2000:]


@pytest.mark.slow
@pytest.mark.parametrize("backend", OTHER)
def test_every_keras_entry_point_runs_on_every_installed_backend(backend, tmp_path):
    """Smoke runs of the trainers (the augmented recipe: the augmentation layer too; the denoiser) and of
    prediction from the run folder, started with --backend."""
    from PIL import Image

    runs = str(tmp_path / "runs")
    out = run(["-m", "keras_ref.train", "--backend", backend, "--config", "configs/mnist_specified_cnn_augmented.yaml",
               "--epochs", "1", "--limit-train", "2048", "--runs-dir", runs, "--quiet"])
    assert out.returncode == 0, out.stderr[-3000:]
    run_dir = out.stdout.strip().splitlines()[-1]
    assert json.loads(Path(run_dir, "metrics.json").read_text())["test_acc"] > 0.3  # 2048 images (32 steps), 1 epoch: past chance

    Image.fromarray(np.full((28, 28), 0, np.uint8)).save(tmp_path / "blank.png")
    out = run(["-m", "keras_ref.predict", "--backend", backend, run_dir, str(tmp_path / "blank.png"), "--json",
               str(tmp_path / "p.json"), "--quiet"])
    assert out.returncode == 0 and json.loads((tmp_path / "p.json").read_text()), out.stderr[-3000:]

    out = run(["-m", "keras_ref.train_denoiser", "--backend", backend, "--epochs", "1", "--limit-train", "256",
               "--limit-val", "100", "--limit-test", "100", "--runs-dir", runs, "--quiet"])
    assert out.returncode == 0, out.stderr[-3000:]
    assert json.loads(Path(out.stdout.strip().splitlines()[-1], "metrics.json").read_text())["test_psnr"] > 0  # 2 steps: a smoke run, not a denoiser
