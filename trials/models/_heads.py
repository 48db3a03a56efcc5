"""Task heads: DeepLab-v2's ASPP and a light conv head for CPU studies."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, field_validator
from torch import Tensor, nn

from trials.models._base import HEADS, Head, ModelOptionError, parse_options


def _check_channels(owner: str, in_channels: object, out_channels: object) -> None:
    for name, value in (("in_channels", in_channels), ("out_channels", out_channels)):
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ModelOptionError(f"{owner} {name} must be a positive integer but got {value!r}")


class ASPPParams(BaseModel):
    """Options of the ``aspp`` head."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    hidden: int = Field(256, gt=0)
    rates: tuple[int, ...] = (6, 12, 18, 24)
    dropout: float = Field(0.0, ge=0.0, lt=1.0)

    @field_validator("rates")
    @classmethod
    def _positive_rates(cls, rates: tuple[int, ...]) -> tuple[int, ...]:
        if not rates or any(rate <= 0 for rate in rates):
            raise ValueError("must be a non-empty list of positive dilation rates")
        return rates


@HEADS.register("aspp")
class ASPPHead(Head):
    """DeepLab-v2 atrous spatial pyramid pooling head: parallel dilated branches, summed.

    Each branch is conv3x3 (dilation ``rate``, ``in -> hidden``) -> ReLU -> dropout ->
    conv1x1 (``hidden -> hidden``) -> ReLU -> dropout -> conv1x1 (``hidden -> out``), all
    with biases and no normalization; the branch outputs are added. This is the
    ``Classification_Module`` x 4 (rates 6/12/18/24) head of AdaShare (Sun et al.,
    NeurIPS 2020) and AdapMTL (Xiang et al., ACM MM 2024), after DeepLab-v2 (Chen et al.,
    TPAMI 2018).

    Options: ``hidden`` (256; the references use 1024, CPU studies pass smaller values),
    ``rates`` ((6, 12, 18, 24)), ``dropout`` (0.0; the references use 0.5).
    """

    Params: ClassVar[type[ASPPParams]] = ASPPParams

    def __init__(self, in_channels: int, out_channels: int, **options: Any) -> None:
        super().__init__()
        _check_channels("head 'aspp'", in_channels, out_channels)
        self.params = parse_options(ASPPParams, "head 'aspp'", options)
        hidden, dropout = self.params.hidden, self.params.dropout
        self.branches = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(in_channels, hidden, kernel_size=3, padding=rate, dilation=rate),
                nn.ReLU(inplace=True),
                nn.Dropout(dropout),
                nn.Conv2d(hidden, hidden, kernel_size=1),
                nn.ReLU(inplace=True),
                nn.Dropout(dropout),
                nn.Conv2d(hidden, out_channels, kernel_size=1),
            )
            for rate in self.params.rates
        )

    def forward(self, x: Tensor) -> Tensor:
        out = self.branches[0](x)
        for branch in self.branches[1:]:
            out = out + branch(x)
        return out


class LightHeadParams(BaseModel):
    """Options of the ``light`` head."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    hidden: int = Field(32, gt=0)


@HEADS.register("light")
class LightHead(Head):
    """conv3x3 (``in -> hidden``, no bias) + BatchNorm + ReLU + conv1x1 (``hidden -> out``).

    A small fully convolutional head (as in FCN, Long et al., CVPR 2015) sized for CPU
    studies. Options: ``hidden`` (32).
    """

    Params: ClassVar[type[LightHeadParams]] = LightHeadParams

    def __init__(self, in_channels: int, out_channels: int, **options: Any) -> None:
        super().__init__()
        _check_channels("head 'light'", in_channels, out_channels)
        self.params = parse_options(LightHeadParams, "head 'light'", options)
        hidden = self.params.hidden
        self.layers = nn.Sequential(
            nn.Conv2d(in_channels, hidden, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, out_channels, kernel_size=1),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(x)
