"""The segmenter: architectures, model files, canonical input and inference (torch is imported lazily)."""
