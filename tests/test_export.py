"""ONNX export: the round trip through ONNX Runtime holds on real test images, the file is self-contained
(normalisation inside, class names in its metadata), and a failed or impossible check writes nothing."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lightning_impl import export
from core.datasets import ensure_available, load_split

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]


def test_classifier_round_trip(tiny_classifier_run, tmp_path, capsys):
    import onnxruntime as ort

    out = tmp_path / "mnist.onnx"
    report = export.main([str(tiny_classifier_run), "--out", str(out), "--images", "64", "--json", str(tmp_path / "r.json")])
    assert report["written"] and out.stat().st_size == report["bytes"]
    assert max(report["max_abs_difference"].values()) <= 1e-5
    assert json.loads((tmp_path / "r.json").read_text()) == report
    assert "max |ONNX Runtime - Lightning|" in capsys.readouterr().out

    # The five lines of docs/predict.md: raw test images scaled to [0, 1] in, probabilities out.
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    images, labels = load_split("mnist", ensure_available("mnist"), train=False)
    x = images[:500].numpy().astype(np.float32) / 255.0
    logits, probabilities = session.run(["logits", "probabilities"], {"images": x})
    assert probabilities.shape == (500, 10) and np.allclose(probabilities.sum(1), 1, atol=1e-5)
    assert (probabilities.argmax(1) == labels[:500].numpy()).mean() > 0.9
    assert json.loads(session.get_modelmeta().custom_metadata_map["classes"]) == [str(i) for i in range(10)]


def test_denoiser_round_trip(tiny_denoiser_run, tmp_path):
    import onnxruntime as ort

    out = tmp_path / "dae.onnx"
    report = export.main([str(tiny_denoiser_run), "--out", str(out), "--images", "64", "--quiet"])
    assert report["written"] and report["max_abs_difference"]["restored"] <= 1e-5
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    (restored,) = session.run(None, {"images": np.random.default_rng(0).random((3, 1, 28, 28), dtype=np.float32)})
    assert restored.shape == (3, 1, 28, 28) and restored.min() >= 0 and restored.max() <= 1


def test_refuses_to_write_beyond_the_tolerance(tiny_classifier_run, tmp_path):
    out = tmp_path / "strict.onnx"
    result = subprocess.run([sys.executable, "-m", "lightning_impl.export", str(tiny_classifier_run), "--out", str(out),
                             "--images", "32", "--tolerance", "1e-12"], capture_output=True, text=True, cwd=ROOT)
    if result.returncode == 0:  # the two implementations agreed to the last bit: nothing to refuse
        pytest.skip("ONNX Runtime matched Lightning exactly")
    assert result.returncode == 2 and not out.exists()
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1 and "not written" in result.stderr


def test_refuses_without_test_images(tiny_classifier_run, tmp_path):
    out = tmp_path / "unchecked.onnx"
    env = {"LIGHTNING_IMPL_DATA": str(tmp_path / "none"), "LIGHTNING_IMPL_CACHE": str(tmp_path / "cache")}
    result = subprocess.run([sys.executable, "-m", "lightning_impl.export", str(tiny_classifier_run), "--out", str(out)],
                            capture_output=True, text=True, cwd=ROOT, env={**os.environ, **env})
    assert result.returncode == 2 and not out.exists()
    assert result.stderr.startswith("error: the export is checked on real mnist test images") and result.stderr.count("\n") == 1
