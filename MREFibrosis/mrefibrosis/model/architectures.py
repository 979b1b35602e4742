"""The seed paper's UNet-ResNeXt50-32x4d and its plain U-Net baseline.

Never downloads weights: the encoder is built with ``encoder_weights=None`` and the model file
supplies every parameter.
"""

from __future__ import annotations

import torch
from torch import nn

from .architecture_names import ARCHITECTURES, UNET_CLASSIC, UNET_RESNEXT50

__all__ = ["ARCHITECTURES", "UNET_CLASSIC", "UNET_RESNEXT50", "ClassicUNet", "build_model"]


class _DoubleConv(nn.Sequential):
    def __init__(self, cin: int, cout: int):
        super().__init__(
            nn.Conv2d(cin, cout, 3, padding=1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, padding=1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
        )


class ClassicUNet(nn.Module):
    """Ronneberger-style U-Net with 4 down/up levels (padded convolutions, transposed-conv upsampling)."""

    def __init__(self, in_channels: int = 1, classes: int = 1, base: int = 64):
        super().__init__()
        widths = [base * 2**i for i in range(5)]
        self.down = nn.ModuleList([_DoubleConv(in_channels, widths[0])] + [_DoubleConv(widths[i], widths[i + 1]) for i in range(4)])
        self.up = nn.ModuleList([nn.ConvTranspose2d(widths[i + 1], widths[i], 2, stride=2) for i in reversed(range(4))])
        self.merge = nn.ModuleList([_DoubleConv(widths[i] * 2, widths[i]) for i in reversed(range(4))])
        self.head = nn.Conv2d(widths[0], classes, 1)
        self.pool = nn.MaxPool2d(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for n, block in enumerate(self.down):
            x = block(x if n == 0 else self.pool(x))
            skips.append(x)
        x = skips.pop()
        for up, merge in zip(self.up, self.merge):
            x = merge(torch.cat([skips.pop(), up(x)], dim=1))
        return self.head(x)


def build_model(architecture: str, in_channels: int = 1, base_channels: int = 64, classes: int = 1) -> nn.Module:
    """One output map per class: the ROI first, then (liver-aware models) the liver."""
    if architecture == UNET_RESNEXT50:
        import segmentation_models_pytorch as smp

        return smp.Unet(encoder_name="resnext50_32x4d", encoder_weights=None, in_channels=in_channels, classes=classes)
    if architecture == UNET_CLASSIC:
        return ClassicUNet(in_channels=in_channels, classes=classes, base=base_channels)
    raise ValueError(f"unknown architecture {architecture!r}; choose one of {', '.join(ARCHITECTURES)}")
