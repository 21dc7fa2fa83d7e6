"""Datasets as float32 tensors in [0, 1] (config group ``dataset``).

- ``load_dataset(cfg, seed) -> DatasetSplits``: ``digits`` (scikit-learn, bundled),
  ``fashion_mnist`` (idx files: data_dir, Debian's package, or download), ``mnist`` and
  ``cifar10`` (torchvision's on-disk formats; ``dataset.download=true`` fetches them).
- ``dataset_info(name) -> (input_shape, num_classes_all, class_names)`` without loading.
- ``DEFAULT_MODEL``: dataset name -> model config name.
"""

from .idx import read_idx
from .info import DEFAULT_MODEL, dataset_info
from .loading import load_dataset
from .splits import DatasetSplits

__all__ = ["DEFAULT_MODEL", "DatasetSplits", "dataset_info", "load_dataset", "read_idx"]
