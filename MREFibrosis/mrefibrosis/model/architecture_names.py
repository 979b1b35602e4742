"""Architecture names, importable without torch (the CLI's option list, training configs)."""

UNET_RESNEXT50 = "unet_resnext50_32x4d"
UNET_CLASSIC = "unet_classic"
ARCHITECTURES = (UNET_RESNEXT50, UNET_CLASSIC)
