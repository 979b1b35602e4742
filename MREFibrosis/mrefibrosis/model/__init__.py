"""The segmentation model: architectures (the paper's UNet-ResNeXt50 and a plain U-Net), the
checksummed model file, the canonical network input, and inference with its post-processing."""
