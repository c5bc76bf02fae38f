"""The report's and the notebook's live models: a recipe's net built in both frameworks as the trainers build them,
and the architecture table read layer by layer from both."""

from __future__ import annotations

from core.architectures import ARCHITECTURES, resolve
from experiments.document import Table


def recipe_net(recipe: str) -> dict:
    """A recipe's ``model.net`` (class_path + init_args); the specified CNN when the recipe leaves the default."""
    from core import configs

    return configs.load(recipe)["model"].get("net") or {
        "class_path": "lightning_impl.models.specified_cnn.SpecifiedCNN", "init_args": {}}


def build_pair(net_config: dict, input_shape: tuple[int, int, int], num_classes: int = 10):
    """The torch net of a recipe's ``model.net`` and its Keras twin, built as the trainers build them."""
    import torch

    from keras_ref.models import TWINS

    cls = net_config["class_path"].rpartition(".")[2]
    args = dict(net_config.get("init_args") or {})
    torch_net = resolve(net_config["class_path"])(**args)
    torch_net.eval()
    c, h, w = input_shape
    keras_args = {k: v for k, v in args.items() if k not in ("in_channels", "input_size", "num_classes")}
    classifier = ARCHITECTURES[cls].task == "classifier"
    keras_net = TWINS[cls]((h, w, c), num_classes, **keras_args) if classifier else TWINS[cls]((h, w, c), **keras_args)
    with torch.no_grad():
        torch_net(torch.zeros(1, *input_shape))
    return torch_net, keras_net


def architecture_table(torch_net, keras_net, input_shape: tuple[int, int, int]) -> Table:
    """Layer by layer, read from both live models: type, output shape, parameters."""
    import numpy as np
    import torch

    from parity.shapes import corresponding_layers, keras_trace, torch_trace

    pairs = corresponding_layers(torch_net, keras_net)
    x = torch.zeros(2, *input_shape)
    t_out = torch_trace(torch_net.eval(), x, [p.torch_name for p in pairs])
    k_out = keras_trace(keras_net, np.zeros((2, *input_shape[1:], input_shape[0]), dtype="float32"))

    def shape(s) -> str:
        return "×".join(str(d) for d in s[1:])

    rows = []
    for p in pairs:
        t_params = sum(q.numel() for q in p.torch_layer.parameters())
        k_params = sum(int(np.prod(w.shape)) for w in p.keras_layer.trainable_weights)
        rows.append([p.name, type(p.torch_layer).__name__, shape(t_out[p.torch_name][1].shape), f"{t_params:,}",
                     type(p.keras_layer).__name__, shape(k_out[p.name].shape), f"{k_params:,}"])
    t_total = sum(q.numel() for q in torch_net.parameters())
    k_total = sum(int(np.prod(w.shape)) for w in keras_net.trainable_weights)
    rows.append(["**total**", "", "", f"**{t_total:,}**", "", "", f"**{k_total:,}**"])
    return Table(["layer", "torch module", "torch output (C×H×W)", "params", "Keras layer", "Keras output (H×W×C)", "params"],
                 rows, align="lllrllr")
