"""Datasets as float32 tensors in [0, 1] (config group ``dataset``).

- ``load_dataset(settings, seed) -> DatasetSplits``: ``digits`` (scikit-learn, bundled),
  ``fashion_mnist`` (idx files: data_dir, Debian's package, or download), ``mnist`` and
  ``cifar10`` (torchvision's on-disk formats; ``dataset.download=true`` fetches them).
- Each option's settings class (``_target_`` of ``conf/dataset/<option>.yaml``) holds its
  static facts (``input_shape``, ``class_names``) and its loader.
"""

from .idx import read_idx
from .loading import load_dataset
from .settings import DatasetSettings, FileDatasetSettings
from .splits import DatasetSplits

__all__ = ["DatasetSettings", "DatasetSplits", "FileDatasetSettings", "load_dataset", "read_idx"]
