"""airbench's training elements as options of the whitened CIFAR-10 recipe (configs/elements/cifar10_whitened/):
alternating flips, lookahead and the stem bias frozen after a few epochs, each doing what it says and refused where
it cannot work; and the benchmark that measures each alone (benchmarks/recipe_elements.py)."""

import importlib.util
import json
from pathlib import Path
from types import SimpleNamespace

import lightning as L
import pytest
import torch

from core import configs
from core.order import mirrored
from core.split import TensorBatches
from lightning_impl.data.augment import CropFlipAugment
from lightning_impl.data.datamodules import CIFAR10DataModule, EpochShuffle, WithMirrors, training_loader
from lightning_impl.models import SpecifiedCNN
from lightning_impl.models.whitened_cnn import WhitenedCNN
from lightning_impl.tasks.classifier import LOOKAHEAD_DECAY, ImageClassifier

ROOT = Path(__file__).resolve().parent.parent
ELEMENTS = ROOT / "configs" / "elements" / "cifar10_whitened"


def load_benchmark():
    spec = importlib.util.spec_from_file_location("recipe_elements", ROOT / "benchmarks" / "recipe_elements.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_alternating_flips_mirror_a_fixed_half_and_then_the_other():
    n = 1000
    even, odd, again = mirrored(n, 7, 0), mirrored(n, 7, 1), mirrored(n, 7, 2)
    assert torch.equal(even, again) and torch.equal(odd, ~even)  # every image both ways in any two epochs
    assert 400 < int(even.sum()) < 600
    assert not torch.equal(mirrored(n, 8, 0), even)  # another seed, another half


def test_the_sampler_serves_each_image_once_an_epoch_mirrored_as_the_epoch_says():
    n = 10
    images = torch.randint(0, 256, (n, 3, 4, 5), dtype=torch.uint8)
    data = WithMirrors(TensorBatches(images=images, labels=torch.arange(n)))
    sampler = EpochShuffle(n, 4, seed=3, alternating_flip=True)
    seen = {}
    for epoch in (0, 1):
        sampler.set_epoch(epoch)
        batches = [data.__getitems__(b) for b in sampler]
        x = torch.cat([b[0] for b in batches])
        labels = torch.cat([b[1] for b in batches])
        assert sorted(labels.tolist()) == list(range(n))
        flipped = mirrored(n, 3, epoch)
        for image, label in zip(x, labels.tolist()):
            assert torch.equal(image, images[label].flip(-1) if flipped[label] else images[label])
        seen[epoch] = {label: bool(flipped[label]) for label in labels.tolist()}
    assert all(seen[0][i] != seen[1][i] for i in range(n))
    # Without the option nothing is mirrored and the order is the same as with it.
    plain = EpochShuffle(n, 4, seed=3)
    assert all(int(b.max()) < n for b in plain)


def test_alternating_flips_refuse_a_second_random_flip_and_several_devices():
    with pytest.raises(ValueError, match="flip=False"):
        CIFAR10DataModule(download=False, alternating_flip=True, augment=CropFlipAugment(padding=2))
    with pytest.raises(ValueError, match="true or false"):
        CIFAR10DataModule(download=False, alternating_flip="yes")
    CIFAR10DataModule(download=False, alternating_flip=True, augment=CropFlipAugment(padding=2, flip=False))
    data = TensorBatches(images=torch.zeros(4, 3, 2, 2, dtype=torch.uint8), labels=torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="one process"):
        training_loader(data, 2, SimpleNamespace(world_size=2), seed=0, alternating_flip=True)


def test_lookahead_moves_the_net_to_its_average_on_schedule():
    model = ImageClassifier(net=WhitenedCNN(widths=(4, 8, 8)), lookahead=5)
    model._trainer = SimpleNamespace(estimated_stepping_batches=100)
    model.on_train_start()
    assert model.lookahead_steps == 100
    start = [t.clone() for t in model.averaged()]
    names = [k for k, t in model.net.state_dict().items() if t.is_floating_point()]
    assert any("running_mean" in k for k in names) and not any("num_batches_tracked" in k for k in names)
    with torch.no_grad():
        for t in model.averaged():
            t.add_(1.0)
    model.lookahead_step(3, 100)  # not a sync step: the net keeps its own weights
    assert all(torch.equal(t, s + 1) for t, s in zip(model.averaged(), start))
    model.lookahead_step(5, 100)
    keep = LOOKAHEAD_DECAY**5 * (5 / 100) ** 3
    for t, avg, s in zip(model.averaged(), model.lookahead_average, start):
        torch.testing.assert_close(t, s + (1 - keep))
        assert torch.equal(t, avg)
    with torch.no_grad():
        for t in model.averaged():
            t.add_(1.0)
    model.lookahead_step(100, 100)  # the last step: the average, whole
    for t, s in zip(model.averaged(), start):
        torch.testing.assert_close(t, s + (1 - keep))


def test_lookahead_refuses_a_run_of_unknown_length():
    model = ImageClassifier(net=WhitenedCNN(widths=(4, 8, 8)), lookahead=5)
    model._trainer = SimpleNamespace(estimated_stepping_batches=float("inf"))
    with pytest.raises(ValueError, match="max_epochs or trainer.max_steps"):
        model.on_train_start()


def test_the_options_refuse_what_cannot_work():
    for bad in (-1, True, 1.5, "5"):
        with pytest.raises(ValueError, match="lookahead"):
            ImageClassifier(net=WhitenedCNN(widths=(4, 8, 8)), lookahead=bad)
        with pytest.raises(ValueError, match="stem_bias_epochs"):
            ImageClassifier(net=WhitenedCNN(widths=(4, 8, 8)), stem_bias_epochs=bad)
    with pytest.raises(ValueError, match="no stem"):
        ImageClassifier(net=SpecifiedCNN(), stem_bias_epochs=3)


def tiny_fit(tmp_path, callbacks=(), epochs=3, **options) -> tuple[ImageClassifier, L.Trainer]:
    dm = CIFAR10DataModule(batch_size=32, eval_batch_size=256, download=False, alternating_flip=True,
                           augment=CropFlipAugment(padding=2, flip=False))
    model = ImageClassifier(net=WhitenedCNN(widths=(4, 8, 8)), optimizer=lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9),
                            **options)
    trainer = L.Trainer(max_epochs=epochs, limit_train_batches=3, limit_val_batches=1, logger=False,
                        enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path,
                        callbacks=list(callbacks), accelerator="cpu", devices=1)
    trainer.fit(model, datamodule=dm)
    return model, trainer


@pytest.mark.filterwarnings("ignore")
def test_a_run_freezes_the_stem_bias_on_time(tmp_path):
    biases = []

    class Record(L.Callback):
        def on_train_epoch_start(self, trainer, module):
            biases.append(module.net.whiten.bias.detach().clone())

        def on_train_end(self, trainer, module):
            biases.append(module.net.whiten.bias.detach().clone())

    model, _ = tiny_fit(tmp_path, [Record()], stem_bias_epochs=1)
    assert not torch.equal(biases[1], biases[0])  # trained in epoch 0
    assert torch.equal(biases[2], biases[1]) and torch.equal(biases[3], biases[1])  # frozen from epoch 1 on
    assert not model.net.whiten.bias.requires_grad


@pytest.mark.filterwarnings("ignore")
def test_a_run_with_lookahead_ends_on_the_average_and_checkpoints_it(tmp_path):
    model, trainer = tiny_fit(tmp_path, epochs=2, lookahead=2)
    for t, avg in zip(model.averaged(), model.lookahead_average):  # step 6 of 6: the net is the average
        assert torch.equal(t, avg)
    saved = torch.load(trainer.checkpoint_callback.last_model_path or trainer.checkpoint_callback.best_model_path,
                       weights_only=False)
    assert [t.shape for t in saved["lookahead_average"]] == [t.shape for t in model.lookahead_average]


@pytest.mark.parametrize("element", ["lookahead", "stem_bias", "alternating_flip"])
def test_the_keras_trainer_refuses_each_element_by_name(element):
    from keras_ref.recipes import RecipeError, classifier_recipe

    config = configs.merge(configs.load("cifar10_whitened.yaml"), configs.load(f"elements/cifar10_whitened/{element}.yaml"))
    key = {"lookahead": "lookahead", "stem_bias": "stem_bias_epochs", "alternating_flip": "alternating_flip"}[element]
    with pytest.raises(RecipeError, match=key):
        classifier_recipe(config)


def test_the_element_benchmark_pairs_each_element_with_the_base_seed_by_seed():
    bench = load_benchmark()
    assert bench.elements_of("cifar10_whitened") == ["alternating_flip", "lookahead", "stem_bias"]
    cmd = bench.command("cifar10_whitened", "lookahead", 1, Path("r"))
    assert cmd[3:7] == ["--config", "configs/cifar10_whitened.yaml", "--config",
                        "configs/elements/cifar10_whitened/lookahead.yaml"]
    assert "--config" not in bench.command("cifar10_whitened", "base", 1, Path("r"))[5:]

    def run(arm, seed, acc, errors, speed):
        return {"arm": arm, "seed": seed, "test_acc": acc, "test_errors": errors, "dataset": "cifar10",
                "images_per_s": speed}

    base_errors = list(range(100))
    runs = [run("base", 0, 0.99, base_errors, 100.0), run("base", 1, 0.99, base_errors, 100.0),
            run("x", 0, 0.994, list(range(60)), 110.0), run("x", 1, 0.994, list(range(60)), 90.0),
            run("y", 0, 0.99, base_errors, 100.0)]
    rows = {r["arm"]: r for r in bench.compare(runs)}
    assert rows["x"]["seeds"] == [0, 1] and rows["x"]["right_only_arm"] == 80 and rows["x"]["right_only_base"] == 0
    assert rows["x"]["gain_pp"] == pytest.approx(0.4) and rows["x"]["speed_ratio"] == pytest.approx(1.0)
    assert bench.verdict(rows["x"]) == "helps" and bench.verdict(rows["y"]) == "within noise"
    assert rows["y"]["seeds"] == [0] and rows["y"]["mcnemar_p"] == 1.0
    result = {"recipe": "r", "command": "python benchmarks/recipe_elements.py", "jobs": 2, "runs": runs,
              "elements": list(rows.values()), "machine": {"cpu": "CPU", "cores": 2, "date": "today"}}
    block = bench.docs_block([result])
    assert "beyond noise (McNemar p < 0.05): helps: x; within noise: y" in block and "Candidates for configs/r.yaml: x" in block
    assert "| r | x | 0, 1 | 99.00, 99.00 | 99.40, 99.40 | +0.40 | 80 / 0 |" in block
    rows["x"].update(mcnemar_p=0.5)
    assert "takes none of these" in bench.docs_block([result])


def test_the_docs_table_is_the_committed_results():
    bench = load_benchmark()
    files = sorted(bench.RESULTS.glob("elements_*.json"))
    if not files:
        pytest.skip("no committed recipe-elements results")
    results = [json.loads(f.read_text()) for f in files]
    page = bench.DOCS.read_text()
    assert bench.docs_block(results) in page
    for res in results:  # each committed comparison is what its runs say
        assert res["elements"] == bench.compare(res["runs"])
