"""Where a trial's weights start: paretune checkpoints, state dicts, torchvision backbones."""

from __future__ import annotations

import json
import pickle
from collections import OrderedDict
from pathlib import Path

import pytest
import torch

from tests.fabricate import batch_norm_state, torchvision_resnet34
from trials import TrialConfig
from trials._init import InitError, load_initial_weights, save_weights
from trials._trainer import Trainer, build_setup
from trials.models import build_model

TASKS = {"segment_semantic": 13, "depth_zbuffer": 1, "normal": 3}
ABOUT = {"model": "resnet-tiny", "head": "light"}


def _tiny(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_model("resnet-tiny", "light", TASKS, backbone_options={"width": 8})


def _same(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values(),
                                                  strict=True))  # fmt: skip


def test_a_paretune_checkpoint_loads_the_whole_model(tmp_path: Path) -> None:
    trained, fresh = _tiny(0), _tiny(1)
    with torch.no_grad():
        trained.backbone.stages[0][1].running_mean.fill_(0.5)  # buffers travel too
    path = save_weights(trained, tmp_path / "w.pt", ABOUT)
    assert not _same(trained, fresh)
    assert load_initial_weights(fresh, str(path), ABOUT) == "model from w.pt"
    assert _same(trained, fresh)
    assert load_initial_weights(fresh, "scratch", ABOUT) == "scratch"


def test_a_trial_json_names_its_weights(tmp_path: Path) -> None:
    trained, fresh = _tiny(0), _tiny(1)
    save_weights(trained, tmp_path / "dense.pt", ABOUT)
    (tmp_path / "dense.json").write_text(json.dumps({"checkpoint": "dense.pt"}))
    load_initial_weights(fresh, str(tmp_path / "dense.json"), ABOUT)
    assert _same(trained, fresh)
    (tmp_path / "old.json").write_text(json.dumps({"metrics": {}}))
    with pytest.raises(InitError, match="names no checkpoint"):
        load_initial_weights(fresh, str(tmp_path / "old.json"), ABOUT)


def test_a_plain_state_dict_of_the_same_model_loads(tmp_path: Path) -> None:
    trained, fresh = _tiny(0), _tiny(1)
    torch.save(trained.state_dict(), tmp_path / "plain.pt")
    load_initial_weights(fresh, str(tmp_path / "plain.pt"), ABOUT)
    assert _same(trained, fresh)


def test_weights_that_do_not_fit_are_one_clear_error(tmp_path: Path) -> None:
    save_weights(_tiny(0), tmp_path / "w.pt", ABOUT)
    wide = build_model("resnet-tiny", "light", TASKS, backbone_options={"width": 16})
    with pytest.raises(InitError, match=r"does not fit this model: .* of another shape"):
        load_initial_weights(wide, str(tmp_path / "w.pt"), ABOUT)
    with pytest.raises(InitError, match="holds a model 'resnet-tiny' but this trial uses"):
        load_initial_weights(wide, str(tmp_path / "w.pt"), {"model": "mobilenetv2"})
    two = build_model("resnet-tiny", "light", {"normal": 3}, backbone_options={"width": 8})
    with pytest.raises(InitError, match="unexpected"):
        load_initial_weights(two, str(tmp_path / "w.pt"), ABOUT)
    with pytest.raises(InitError, match="does not exist"):
        load_initial_weights(wide, str(tmp_path / "none.pt"), ABOUT)


class _Boom:
    def __reduce__(self):  # runs a command when unpickled by a careless loader
        return (Path.touch, (Path("/tmp/paretune-init-test-pwned"),))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_a_pickle_with_code_is_refused_without_running_it(tmp_path: Path) -> None:
    marker = Path("/tmp/paretune-init-test-pwned")
    marker.unlink(missing_ok=True)
    path = tmp_path / "evil.pt"
    path.write_bytes(pickle.dumps({"state_dict": _Boom()}))
    with pytest.raises(InitError, match="not a readable weights file"):
        load_initial_weights(_tiny(0), str(path), ABOUT)
    assert not marker.exists()


# --- torchvision's ImageNet checkpoints, fabricated with its key names and shapes ---------
def torchvision_mobilenet_v2() -> OrderedDict:
    """The keys and shapes of ``torchvision.models.mobilenet_v2().state_dict()``
    (inverted residual settings t, c, n, s of Sandler et al. 2018; ``features.18`` the
    1280-channel conv; ``classifier.1`` the linear layer)."""
    state: OrderedDict = OrderedDict()
    state["features.0.0.weight"] = torch.randn(32, 3, 3, 3)
    batch_norm_state(state, "features.0.1", 32)
    channels, index = 32, 1
    for t, c, n, _ in ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                       (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)):  # fmt: skip
        for _ in range(n):
            hidden, prefix, part = channels * t, f"features.{index}.conv", 0
            if t != 1:
                state[f"{prefix}.0.0.weight"] = torch.randn(hidden, channels, 1, 1)
                batch_norm_state(state, f"{prefix}.0.1", hidden)
                part = 1
            state[f"{prefix}.{part}.0.weight"] = torch.randn(hidden, 1, 3, 3)
            batch_norm_state(state, f"{prefix}.{part}.1", hidden)
            state[f"{prefix}.{part + 1}.weight"] = torch.randn(c, hidden, 1, 1)
            batch_norm_state(state, f"{prefix}.{part + 2}", c)
            channels, index = c, index + 1
    state["features.18.0.weight"] = torch.randn(1280, 320, 1, 1)
    batch_norm_state(state, "features.18.1", 1280)
    state["classifier.1.weight"] = torch.randn(1000, 1280)
    state["classifier.1.bias"] = torch.randn(1000)
    return state


def test_imagenet_resnet34_weights_load_into_the_deeplab_backbone(tmp_path: Path) -> None:
    torchvision = torchvision_resnet34()
    torch.save(torchvision, tmp_path / "resnet34-imagenet.pth")
    model = build_model("deeplab-resnet34", "light", TASKS)
    heads = {k: v.clone() for k, v in model.heads.state_dict().items()}
    said = load_initial_weights(model, str(tmp_path / "resnet34-imagenet.pth"), {})
    assert said == "backbone from resnet34-imagenet.pth (216 tensors)"  # fc left out
    stages = model.backbone.stages
    assert torch.equal(stages[0][0].weight, torchvision["conv1.weight"])
    assert torch.equal(stages[0][1].running_var, torchvision["bn1.running_var"])
    assert torch.equal(stages[3][0].shortcut[0].weight, torchvision["layer3.0.downsample.0.weight"])
    assert torch.equal(stages[4][2].conv2.weight, torchvision["layer4.2.conv2.weight"])
    assert all(torch.equal(v, heads[k]) for k, v in model.heads.state_dict().items())


def test_imagenet_mobilenet_v2_weights_load_into_the_backbone(tmp_path: Path) -> None:
    torchvision = torchvision_mobilenet_v2()
    torch.save(torchvision, tmp_path / "mobilenet_v2.pth")
    model = build_model("mobilenetv2", "light", TASKS)
    said = load_initial_weights(model, str(tmp_path / "mobilenet_v2.pth"), {})
    assert said == "backbone from mobilenet_v2.pth (306 tensors; 6 past the backbone left out)"
    backbone = model.backbone.state_dict()
    assert torch.equal(backbone["stages.0.0.0.weight"], torchvision["features.0.0.weight"])
    last = list(backbone)[-6]  # the last projection conv of the last block
    assert torch.equal(backbone[last], torchvision["features.17.conv.2.weight"])


def test_imagenet_weights_of_another_backbone_are_refused(tmp_path: Path) -> None:
    torch.save(torchvision_mobilenet_v2(), tmp_path / "mobilenet_v2.pth")
    model = build_model("deeplab-resnet34", "light", TASKS)
    with pytest.raises(InitError, match=r"does not fit this backbone: features\.0\.0\.weight"):
        load_initial_weights(model, str(tmp_path / "mobilenet_v2.pth"), {})


def test_a_trial_starts_from_a_dense_trial_and_writes_its_own(tiny_trial, tmp_path) -> None:
    dense = Trainer(build_setup(TrialConfig(
        **tiny_trial, save_checkpoint=str(tmp_path / "dense.pt")))).train()  # fmt: skip
    assert dense.checkpoint == str(tmp_path / "dense.pt")
    setup = build_setup(TrialConfig(**tiny_trial, method="magnitude", init=dense.checkpoint))
    reference = build_setup(TrialConfig(**tiny_trial, method="magnitude"))
    assert not _same(setup.model, reference.model)
    loaded = torch.load(dense.checkpoint, weights_only=True)["state_dict"]
    assert all(torch.equal(loaded[k], v) for k, v in setup.model.state_dict().items())
