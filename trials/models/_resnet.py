"""ResNet-style backbones: a CPU-sized ``resnet-tiny`` and DeepLab's dilated ResNet-34.

References:
    He et al., "Deep Residual Learning for Image Recognition", CVPR 2016 (basic blocks).
    Chen et al., "DeepLab: Semantic Image Segmentation with Deep Convolutional Nets, Atrous
    Convolution, and Fully Connected CRFs", TPAMI 2018 (dilation instead of stride).
    Sun et al., "AdaShare: Learning What to Share for Efficient Deep Multi-Task Learning",
    NeurIPS 2020, and Xiang et al., "AdapMTL: Adaptive Pruning Framework for Multitask
    Learning Model", ACM MM 2024 (dilated ResNet-34 with output stride 8 on NYUv2).

All layers keep PyTorch's default initialization: the soft-threshold pruners' threshold
defaults are calibrated to those weight scales.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor, nn

from trials.models._base import BACKBONES, Backbone, parse_options


def _conv3x3(in_channels: int, out_channels: int, stride: int = 1, dilation: int = 1) -> nn.Conv2d:
    return nn.Conv2d(
        in_channels,
        out_channels,
        kernel_size=3,
        stride=stride,
        padding=dilation,
        dilation=dilation,
        bias=False,
    )


class BasicBlock(nn.Module):
    """Two 3x3 conv + BatchNorm layers with an identity or 1x1-projection shortcut.

    Both convolutions use ``dilation`` (the DeepLab / AdaShare convention for dilated
    layers); the first one carries ``stride``. A projection shortcut is used whenever the
    shape changes.
    """

    def __init__(
        self, in_channels: int, out_channels: int, stride: int = 1, dilation: int = 1
    ) -> None:
        super().__init__()
        self.conv1 = _conv3x3(in_channels, out_channels, stride, dilation)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = _conv3x3(out_channels, out_channels, 1, dilation)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


def _layer(
    in_channels: int, out_channels: int, blocks: int, stride: int, dilation: int
) -> nn.Sequential:
    layers = [BasicBlock(in_channels, out_channels, stride, dilation)]
    layers += [BasicBlock(out_channels, out_channels, 1, dilation) for _ in range(blocks - 1)]
    return nn.Sequential(*layers)


class ResNetTinyParams(BaseModel):
    """Options of ``resnet-tiny``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    in_channels: int = Field(3, gt=0)
    width: int = Field(32, gt=0)


@BACKBONES.register("resnet-tiny")
class ResNetTiny(Backbone):
    """A small residual backbone for CPU studies (output stride 4, ``2 * width`` channels).

    Stages: ``stem`` (3x3 conv, stride 2, ``width`` channels); ``layer1`` (one basic
    block, ``width``); ``layer2`` (one basic block, stride 2, ``2 * width`` with a 1x1
    projection); ``layer3`` (one basic block with dilation 2, ``2 * width``). Seven 3x3
    convolutions and one 1x1 in total, about 0.1M parameters at width 32; 64x64 inputs
    give 16x16 features. A scaled-down version of He et al. (CVPR 2016) with DeepLab-style
    dilation (Chen et al., TPAMI 2018) in the last stage.

    Options: ``in_channels`` (3), ``width`` (32).
    """

    Params: ClassVar[type[ResNetTinyParams]] = ResNetTinyParams

    def __init__(self, **options: Any) -> None:
        super().__init__()
        self.params = parse_options(ResNetTinyParams, "backbone 'resnet-tiny'", options)
        width = self.params.width
        stem = nn.Sequential(
            _conv3x3(self.params.in_channels, width, stride=2),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
        )
        self.stages = nn.ModuleList(
            [
                stem,
                BasicBlock(width, width),
                BasicBlock(width, 2 * width, stride=2),
                BasicBlock(2 * width, 2 * width, dilation=2),
            ]
        )
        self.out_channels = 2 * width
        self.output_stride = 4


class DeepLabResNet34Params(BaseModel):
    """Options of ``deeplab-resnet34``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    in_channels: int = Field(3, gt=0)
    output_stride: Literal[8, 16] = 8


@BACKBONES.register("deeplab-resnet34")
class DeepLabResNet34(Backbone):
    """ResNet-34 (basic blocks ``[3, 4, 6, 3]``) dilated to output stride 8, 512 channels.

    The backbone of AdaShare (Sun et al., NeurIPS 2020) and AdapMTL (Xiang et al., ACM MM
    2024) on NYUv2: stem conv7x7 stride 2 + BatchNorm + ReLU + max-pool 3x3 stride 2, then
    ``layer1`` (64) and ``layer2`` (128, stride 2); ``layer3`` (256) and ``layer4`` (512)
    replace their stride by dilation 2 and 4 (DeepLab, Chen et al. TPAMI 2018). With
    ``output_stride=16`` only ``layer4`` is dilated (rate 2). A 321x321 input gives 41x41
    features. Stages: ``stem``, ``layer1`` .. ``layer4``.

    Options: ``in_channels`` (3), ``output_stride`` (8 or 16, default 8).
    """

    Params: ClassVar[type[DeepLabResNet34Params]] = DeepLabResNet34Params

    def __init__(self, **options: Any) -> None:
        super().__init__()
        self.params = parse_options(DeepLabResNet34Params, "backbone 'deeplab-resnet34'", options)
        stem = nn.Sequential(
            nn.Conv2d(self.params.in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False),
            nn.BatchNorm2d(64),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2, padding=1),
        )
        if self.params.output_stride == 8:
            layer3 = _layer(128, 256, 6, stride=1, dilation=2)
            layer4 = _layer(256, 512, 3, stride=1, dilation=4)
        else:
            layer3 = _layer(128, 256, 6, stride=2, dilation=1)
            layer4 = _layer(256, 512, 3, stride=1, dilation=2)
        self.stages = nn.ModuleList(
            [
                stem,
                _layer(64, 64, 3, stride=1, dilation=1),
                _layer(64, 128, 4, stride=2, dilation=1),
                layer3,
                layer4,
            ]
        )
        self.out_channels = 512
        self.output_stride = self.params.output_stride
