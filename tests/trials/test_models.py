"""Contract tests for every registered backbone and head, plus the builders."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from trials.models import (
    BACKBONES,
    DEFAULT_TASK_CHANNELS,
    HEADS,
    Backbone,
    Head,
    ModelOptionError,
    MultiTaskModel,
    build_model,
    count_parameters,
    describe_models,
)
from trials.registry import UnknownNameError

TWO_TASKS = {"segment_semantic": 5, "depth_zbuffer": 1}
#: Small head sizes so the contract tests stay fast.
SMALL_HEADS = {"aspp": {"hidden": 8}, "light": {"hidden": 8}}


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)


def _batch(backbone: str) -> int:
    return 2 if backbone == "resnet-tiny" else 1


def test_registries_hold_the_documented_plugins() -> None:
    assert {"resnet-tiny", "deeplab-resnet34", "mobilenetv2"} <= set(BACKBONES.names())
    assert {"aspp", "light"} <= set(HEADS.names())


@pytest.mark.parametrize("head", HEADS.names())
@pytest.mark.parametrize("backbone", BACKBONES.names())
def test_every_backbone_and_head_predicts_at_input_resolution(backbone: str, head: str) -> None:
    model = build_model(backbone, head, TWO_TASKS, head_options=SMALL_HEADS.get(head))
    assert isinstance(model, MultiTaskModel)
    assert isinstance(model.backbone, Backbone)
    assert all(isinstance(h, Head) for h in model.heads.values())
    batch = _batch(backbone)
    x = torch.randn(batch, 3, 40, 48)  # not square, not a multiple of every stride
    out = model(x)
    assert list(out) == list(TWO_TASKS)
    for task, channels in TWO_TASKS.items():
        assert out[task].shape == (batch, channels, 40, 48)
        assert torch.isfinite(out[task]).all()


@pytest.mark.parametrize("backbone", BACKBONES.names())
def test_output_stride_and_channels_match_the_features(backbone: str) -> None:
    net = BACKBONES.get(backbone)().eval()
    with torch.no_grad():
        features = net(torch.randn(1, 3, 64, 64))
    side = 64 // net.output_stride
    assert features.shape == (1, net.out_channels, side, side)
    assert isinstance(net.stages, nn.ModuleList)
    assert len(net.stages) >= 3


@pytest.mark.parametrize("backbone", BACKBONES.names())
def test_stages_applied_in_order_equal_the_backbone_forward(backbone: str) -> None:
    net = BACKBONES.get(backbone)().eval()
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        staged = x
        for stage in net.stages:
            staged = stage(staged)
        assert torch.equal(staged, net(x))


def test_deeplab_resnet34_has_output_stride_8_at_321() -> None:
    net = BACKBONES.get("deeplab-resnet34")().eval()
    assert net.output_stride == 8
    assert net.out_channels == 512
    assert len(net.stages) == 5  # stem, layer1 .. layer4
    with torch.no_grad():
        features = net(torch.randn(1, 3, 321, 321))
    side = math.ceil(321 / 8)
    assert side == 41
    assert features.shape == (1, 512, side, side)


def test_deeplab_resnet34_dilates_layer3_and_layer4() -> None:
    net = BACKBONES.get("deeplab-resnet34")()
    dilations = [
        {m.dilation[0] for m in stage.modules() if isinstance(m, nn.Conv2d)} for stage in net.stages
    ]
    assert dilations[:3] == [{1}, {1}, {1}]  # stem, layer1, layer2 are not dilated
    # 3x3 convs of layer3/layer4 are dilated 2/4 (the 1x1 projections have dilation 1).
    layer3_3x3 = {
        m.dilation[0]
        for m in net.stages[3].modules()
        if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3)
    }
    layer4_3x3 = {
        m.dilation[0]
        for m in net.stages[4].modules()
        if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3)
    }
    assert layer3_3x3 == {2}
    assert layer4_3x3 == {4}
    blocks = [len(stage) for stage in net.stages[1:]]
    assert blocks == [3, 4, 6, 3]


def test_deeplab_resnet34_output_stride_16_option() -> None:
    net = BACKBONES.get("deeplab-resnet34")(output_stride=16).eval()
    with torch.no_grad():
        assert net(torch.randn(1, 3, 64, 64)).shape == (1, 512, 4, 4)


def test_mobilenetv2_width_multiplier_scales_channels() -> None:
    full = BACKBONES.get("mobilenetv2")()
    half = BACKBONES.get("mobilenetv2")(width_multiplier=0.5)
    assert full.out_channels == 320
    assert half.out_channels == 160
    assert count_parameters(half) < count_parameters(full) / 2
    with torch.no_grad():
        assert half.eval()(torch.randn(1, 3, 64, 64)).shape == (1, 160, 8, 8)


def test_mobilenetv2_output_stride_32_keeps_all_strides() -> None:
    net = BACKBONES.get("mobilenetv2")(output_stride=32).eval()
    with torch.no_grad():
        assert net(torch.randn(1, 3, 64, 64)).shape == (1, 320, 2, 2)


def test_resnet_tiny_is_small_and_uses_default_conv_init() -> None:
    net = BACKBONES.get("resnet-tiny")()
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    assert 6 <= len(convs) <= 8
    assert net.out_channels == 64 and net.output_stride == 4
    for conv in convs:  # kaiming_uniform(a=sqrt(5)): |w| <= 1 / sqrt(fan_in)
        fan_in = conv.weight[0].numel()
        assert conv.weight.abs().max() <= 1 / math.sqrt(fan_in) + 1e-6
    assert BACKBONES.get("resnet-tiny")(width=16).out_channels == 32


def test_in_channels_option_changes_the_stem() -> None:
    for name in BACKBONES.names():
        net = BACKBONES.get(name)(in_channels=1).eval()
        with torch.no_grad():
            assert net(torch.randn(1, 1, 32, 32)).shape[1] == net.out_channels


def test_components_name_backbone_then_heads() -> None:
    model = build_model("resnet-tiny", "light", {"a": 2, "b": 1, "c": 3})
    components = model.components()
    assert list(components) == ["backbone", "head:a", "head:b", "head:c"]
    assert components["backbone"] is model.backbone
    assert components["head:b"] is model.heads["b"]
    assert model.tasks == ("a", "b", "c")


def test_a_training_step_reaches_every_parameter() -> None:
    model = build_model("resnet-tiny", "aspp", TWO_TASKS, head_options={"hidden": 8})
    out = model(torch.randn(2, 3, 32, 32))
    sum(o.pow(2).mean() for o in out.values()).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.any()]
    assert missing == []


def test_head_options_reach_every_head() -> None:
    model = build_model(
        "resnet-tiny", "aspp", TWO_TASKS, head_options={"hidden": 8, "rates": [1, 2]}
    )
    for head in model.heads.values():
        dilated = [m for m in head.modules() if isinstance(m, nn.Conv2d) and m.kernel_size[0] == 3]
        assert [m.dilation for m in dilated] == [(1, 1), (2, 2)]
        assert [m.out_channels for m in dilated] == [8, 8]


def test_aspp_sums_its_branches() -> None:
    head = HEADS.get("aspp")(16, 3, hidden=8).eval()
    x = torch.randn(1, 16, 12, 12)
    with torch.no_grad():
        total = sum(branch(x) for branch in head.branches)
        assert len(head.branches) == 4
        assert torch.allclose(head(x), total, atol=1e-6)


def test_parameter_counts_are_positive_and_consistent() -> None:
    rows = describe_models()
    pairs = {(r["backbone"], r["head"]) for r in rows}
    assert pairs == {(b, h) for b in BACKBONES.names() for h in HEADS.names()}
    for row in rows:
        assert row["backbone_parameters"] > 0
        assert set(row["head_parameters"]) == set(DEFAULT_TASK_CHANNELS)
        assert all(count > 0 for count in row["head_parameters"].values())
        assert row["total_parameters"] == row["backbone_parameters"] + sum(
            row["head_parameters"].values()
        )
        assert 0 < row["prunable_parameters"] <= row["total_parameters"]
    by_pair = {(r["backbone"], r["head"]): r for r in rows}
    tiny = by_pair["resnet-tiny", "light"]
    deeplab = by_pair["deeplab-resnet34", "aspp"]
    assert tiny["backbone_parameters"] * 50 < deeplab["backbone_parameters"]
    assert 21_000_000 < deeplab["backbone_parameters"] < 22_000_000  # ResNet-34 without fc
    model = build_model("resnet-tiny", "light", DEFAULT_TASK_CHANNELS)
    assert count_parameters(model) == tiny["total_parameters"]


def test_describe_models_uses_the_given_tasks() -> None:
    rows = describe_models({"edge_texture": 1})
    assert all(list(r["head_parameters"]) == ["edge_texture"] for r in rows)


@pytest.mark.parametrize(
    ("backbone", "head", "match"),
    [
        (
            "resnet-tni",
            "light",
            r"unknown backbone 'resnet-tni'.*deeplab-resnet34.*"
            r"did you mean 'resnet-tiny'",
        ),
        (
            "resnet-tiny",
            "aspq",
            r"unknown head 'aspq'; choose one of: aspp, light.*"
            r"did you mean 'aspp'",
        ),
    ],
)
def test_unknown_names_list_choices_and_suggest(backbone: str, head: str, match: str) -> None:
    with pytest.raises(UnknownNameError, match=match):
        build_model(backbone, head, TWO_TASKS)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (
            {"backbone_options": {"widht": 16}},
            r"unknown backbone 'resnet-tiny' option 'widht'; choose one of: in_channels, width "
            r"\(did you mean 'width'\?\)",
        ),
        (
            {"backbone_options": {"width": 0}},
            r"backbone 'resnet-tiny' option 'width' should be greater than 0 but got 0",
        ),
        (
            {"backbone": "mobilenetv2", "backbone_options": {"output_stride": 4}},
            r"backbone 'mobilenetv2' option 'output_stride' should be 8, 16 or 32 but got 4",
        ),
        (
            {"backbone": "deeplab-resnet34", "backbone_options": {"witdh": 2}},
            r"unknown backbone 'deeplab-resnet34' option 'witdh'",
        ),
        (
            {"head_options": {"hiden": 4}},
            r"unknown head 'light' option 'hiden'.*did you mean 'hidden'",
        ),
        (
            {"head": "aspp", "head_options": {"rates": []}},
            r"head 'aspp' option 'rates' must be a non-empty list of positive dilation rates",
        ),
        (
            {"head": "aspp", "head_options": {"dropout": 1.5}},
            r"head 'aspp' option 'dropout' should be less than 1 but got 1.5",
        ),
    ],
)
def test_bad_options_name_the_option(kwargs: dict, match: str) -> None:
    with pytest.raises(ModelOptionError, match=match) as info:
        build_model(task_channels=TWO_TASKS, **kwargs)
    assert isinstance(info.value, TypeError) and isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    ("task_channels", "match"),
    [
        (None, r"task_channels must map at least one task"),
        ({}, r"task_channels must map at least one task.*got \{\}"),
        ({"depth": 0}, r"task_channels\['depth'\] must be a positive integer but got 0"),
        ({"a.b": 1}, r"task names without '\.' but got 'a\.b'"),
    ],
)
def test_bad_task_channels_are_reported(task_channels: dict | None, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        build_model("resnet-tiny", "light", task_channels)


def test_bad_head_channels_and_option_containers() -> None:
    with pytest.raises(
        ModelOptionError,
        match=r"head 'light' out_channels must be a positive "
        r"integer but got 0",
    ):
        HEADS.get("light")(16, 0)
    with pytest.raises(TypeError, match=r"backbone_options must be a mapping .* but got list"):
        build_model("resnet-tiny", "light", TWO_TASKS, backbone_options=[("width", 8)])  # type: ignore[arg-type]
