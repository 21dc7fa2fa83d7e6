"""Datasets held as uint8 images, read as float32 batches in [0, 1] (config group ``dataset``).

- ``load_dataset(settings, seed) -> DatasetSplits``: ``digits`` (scikit-learn, bundled),
  ``fashion_mnist`` (idx files: data_dir, Debian's package, or download), ``mnist``,
  ``cifar10``, ``cifar100``, ``svhn``, ``gtsrb`` and ``imagenette`` (torchvision's on-disk
  formats; ``dataset.download=true`` fetches them) and ``image_folder`` (``dataset.root``:
  ``train/<class>/`` and ``test/<class>/``).
- Each option's settings class (``_target_`` of ``conf/dataset/<option>.yaml``) holds its
  static facts (``input_shape``, ``class_names``) and its loader.
- ``BatchedImages`` (``Uint8Images``, ``PatchedImages``, ``FloatImages``; ``as_images``): image
  sets read batch by batch (``x[idx]``, ``x.batch(idx, device)``, ``x.batches(size)``).
"""

from .batched import BatchedImages, FloatImages, as_images
from .idx import read_idx
from .loading import load_dataset
from .patched import PatchedImages
from .settings import DatasetSettings, FileDatasetSettings
from .splits import DatasetSplits
from .uint8_batches import Uint8Images

__all__ = ["BatchedImages", "DatasetSettings", "DatasetSplits", "FileDatasetSettings", "FloatImages",
           "PatchedImages", "Uint8Images", "as_images", "load_dataset", "read_idx"]
