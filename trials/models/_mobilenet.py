"""MobileNetV2 backbone with dilation for dense prediction.

References:
    Sandler et al., "MobileNetV2: Inverted Residuals and Linear Bottlenecks", CVPR 2018
    (blocks, widths and the width multiplier; DeepLab-v3 on its features in section 6.3).
    Chen et al., "DeepLab", TPAMI 2018 (dilation instead of stride past the output stride).
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor, nn

from trials.models._base import BACKBONES, Backbone, parse_options

#: ``(expansion t, channels c, repeats n, stride s)`` per block group, grouped in stages.
_STAGES: tuple[tuple[tuple[int, int, int, int], ...], ...] = (
    ((1, 16, 1, 1),),
    ((6, 24, 2, 2),),
    ((6, 32, 3, 2),),
    ((6, 64, 4, 2), (6, 96, 3, 1)),
    ((6, 160, 3, 2), (6, 320, 1, 1)),
)


def make_divisible(value: float, divisor: int = 8) -> int:
    """Rounds a scaled channel count to a multiple of ``divisor``, losing at most 10%."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


class ConvBNReLU6(nn.Sequential):
    """Convolution (no bias) + BatchNorm + ReLU6, padded to keep the size at stride 1."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        dilation: int = 1,
        groups: int = 1,
    ) -> None:
        padding = (kernel_size - 1) // 2 * dilation
        super().__init__(
            nn.Conv2d(
                in_channels,
                out_channels,
                kernel_size,
                stride=stride,
                padding=padding,
                dilation=dilation,
                groups=groups,
                bias=False,
            ),
            nn.BatchNorm2d(out_channels),
            nn.ReLU6(inplace=True),
        )


class InvertedResidual(nn.Module):
    """Expand (1x1) -> depthwise 3x3 (stride, dilation) -> linear projection (1x1).

    The residual connection is used when the block keeps the shape (stride 1 and equal
    channel counts); the expansion conv is skipped when ``expansion == 1``.
    """

    def __init__(
        self, in_channels: int, out_channels: int, stride: int, dilation: int, expansion: int
    ) -> None:
        super().__init__()
        hidden = in_channels * expansion
        layers: list[nn.Module] = []
        if expansion != 1:
            layers.append(ConvBNReLU6(in_channels, hidden, kernel_size=1))
        layers += [
            ConvBNReLU6(hidden, hidden, stride=stride, dilation=dilation, groups=hidden),
            nn.Conv2d(hidden, out_channels, kernel_size=1, bias=False),
            nn.BatchNorm2d(out_channels),
        ]
        self.block = nn.Sequential(*layers)
        self.use_residual = stride == 1 and in_channels == out_channels

    def forward(self, x: Tensor) -> Tensor:
        out = self.block(x)
        return x + out if self.use_residual else out


class MobileNetV2Params(BaseModel):
    """Options of ``mobilenetv2``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    in_channels: int = Field(3, gt=0)
    width_multiplier: float = Field(1.0, gt=0, le=4)
    output_stride: Literal[8, 16, 32] = 8


@BACKBONES.register("mobilenetv2")
class MobileNetV2(Backbone):
    """MobileNetV2 features (without the final 1x1 conv to 1280) at output stride 8.

    Stages (channels at width multiplier 1): ``0`` stem conv 3x3 stride 2 (32) + the
    first bottleneck (16); ``1`` 24 at stride 4; ``2`` 32 at stride 8; ``3`` 64 and 96;
    ``4`` 160 and 320. Strides that would go past ``output_stride`` become dilations
    (rates 2 then 4 at output stride 8, all blocks of a group share the rate), so a 64x64
    input gives 8x8 features with 320 channels. Channel counts are scaled by
    ``width_multiplier`` and rounded to multiples of 8 (Sandler et al., CVPR 2018).

    Options: ``in_channels`` (3), ``width_multiplier`` (1.0), ``output_stride`` (8, 16
    or 32; default 8).
    """

    Params: ClassVar[type[MobileNetV2Params]] = MobileNetV2Params

    def __init__(self, **options: Any) -> None:
        super().__init__()
        self.params = parse_options(MobileNetV2Params, "backbone 'mobilenetv2'", options)
        multiplier = self.params.width_multiplier
        channels = make_divisible(32 * multiplier)
        current_stride, dilation = 2, 1
        stages: list[nn.Module] = []
        for index, groups in enumerate(_STAGES):
            blocks: list[nn.Module] = []
            if index == 0:
                blocks.append(ConvBNReLU6(self.params.in_channels, channels, stride=2))
            for expansion, width, repeats, stride in groups:
                out_channels = make_divisible(width * multiplier)
                if current_stride * stride > self.params.output_stride:
                    dilation *= stride
                    stride = 1
                else:
                    current_stride *= stride
                for repeat in range(repeats):
                    blocks.append(
                        InvertedResidual(
                            channels,
                            out_channels,
                            stride=stride if repeat == 0 else 1,
                            dilation=dilation,
                            expansion=expansion,
                        )
                    )
                    channels = out_channels
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.ModuleList(stages)
        self.out_channels = channels
        self.output_stride = self.params.output_stride
