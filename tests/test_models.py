"""The specified CNN in both frameworks: parameter counts and every layer's output shape."""

import keras_ref  # noqa: F401
import keras
import torch

from keras_ref.models import specified_cnn
from lightning_impl.tasks.classifier import ImageClassifier
from lightning_impl.models import SpecifiedCNN

# name: (params, torch output shape (C, H, W) or (F,))
LAYERS = {
    "conv1": (320, (32, 28, 28)),
    "relu1": (0, (32, 28, 28)),
    "pool1": (0, (32, 14, 14)),
    "conv2": (12816, (16, 10, 10)),
    "relu2": (0, (16, 10, 10)),
    "pool2": (0, (16, 5, 5)),
    "flatten": (0, (400,)),
    "fc1": (40100, (100,)),
    "relu3": (0, (100,)),
    "fc2": (5050, (50,)),
    "relu4": (0, (50,)),
    "fc3": (510, (10,)),
}


def test_torch_parameters_and_shapes():
    net = SpecifiedCNN()
    assert sum(p.numel() for p in net.parameters()) == 58796
    shapes = {}
    for name, module in net.named_children():
        module.register_forward_hook(lambda m, i, o, name=name: shapes.__setitem__(name, tuple(o.shape[1:])))
    assert net(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
    assert list(shapes) == list(LAYERS)
    for name, (params, shape) in LAYERS.items():
        assert sum(p.numel() for p in getattr(net, name).parameters()) == params, name
        assert shapes[name] == shape, name


def test_keras_parameters_and_shapes():
    model = specified_cnn()
    assert model.count_params() == 58796
    assert [layer.name for layer in model.layers] == list(LAYERS)
    for layer in model.layers:
        params, shape = LAYERS[layer.name]
        nhwc = (shape[1], shape[2], shape[0]) if len(shape) == 3 else shape
        assert layer.count_params() == params, layer.name
        assert tuple(layer.output.shape[1:]) == nhwc, layer.name


def test_classifier_trains_on_logits_and_predicts_probabilities():
    task = ImageClassifier()
    assert isinstance(task.loss, torch.nn.CrossEntropyLoss)
    x = torch.randn(4, 1, 28, 28)
    probs = task.predict_step((x, torch.zeros(4, dtype=torch.long)), 0)
    torch.testing.assert_close(probs.sum(-1), torch.ones(4))
    torch.testing.assert_close(probs, task(x).softmax(-1))


def test_every_architecture_is_registered_once_with_both_twins_and_a_parity_pair():
    """core.architectures.ARCHITECTURES is the one registry: each entry's nn.Module and Keras twin exist, the Keras
    side's TWINS is read from it, and a parity pair checks each (a model added without one of them fails here)."""
    import lightning_impl.models
    from core.architectures import ARCHITECTURES, resolve
    from keras_ref.models import TWINS
    from parity.registry import all_pairs

    assert set(TWINS) == set(ARCHITECTURES)
    for name, entry in ARCHITECTURES.items():
        module = resolve(entry.lightning)
        assert isinstance(module, type) and issubclass(module, torch.nn.Module) and module.__name__ == name
        assert getattr(lightning_impl.models, name) is module and callable(resolve(entry.keras))
    checked = {pair.torch_model.__name__ for pair in all_pairs().values() if isinstance(pair.torch_model, type)}
    checked |= {pair.torch_model().__class__.__name__ for pair in all_pairs().values() if not isinstance(pair.torch_model, type)}
    assert checked >= set(ARCHITECTURES), f"no parity pair for {sorted(set(ARCHITECTURES) - checked)}"
