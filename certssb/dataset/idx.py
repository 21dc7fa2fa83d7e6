"""Reader for the idx format of MNIST / Fashion-MNIST (``train-images-idx3-ubyte`` etc.).

A file may be stored raw or gzipped (``<name>.gz``; detected by its magic bytes). The header is
two zero bytes, a type code, the number of dimensions, then one big-endian uint32 per dimension.
Anything malformed or truncated raises a one-line ``DataNotFoundError`` naming the file.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from certssb.errors import DataNotFoundError

# idx type code -> numpy dtype (big-endian where multi-byte)
_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_GZIP_MAGIC = b"\x1f\x8b"

#: file stems of the idx datasets, per split: (images, labels)
IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def _bad(path: Path, what: str) -> DataNotFoundError:
    return DataNotFoundError(f"{path} is not a valid idx file ({what}): delete it and reinstall or re-download the data")


def _read_bytes(path: Path) -> bytes:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataNotFoundError(f"cannot read {path} ({exc.strerror or exc}): check the file and its permissions") from exc
    if raw[:2] == _GZIP_MAGIC:
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise _bad(path, f"corrupted or truncated gzip data: {' '.join(str(exc).split())}") from exc
    return raw


def read_idx(path: str | Path, ndim: int | None = None) -> np.ndarray:
    """Read one idx file (raw or gzipped) into a numpy array; check magic, shape and size."""
    path = Path(path)
    data = _read_bytes(path)
    if len(data) < 4:
        raise _bad(path, f"only {len(data)} bytes, shorter than the 4-byte magic number")
    if data[0] != 0 or data[1] != 0 or data[2] not in _DTYPES:
        raise _bad(path, f"bad magic number 0x{data[:4].hex()}")
    dtype = _DTYPES[data[2]]
    file_ndim = data[3]
    if ndim is not None and file_ndim != ndim:
        raise _bad(path, f"{file_ndim} dimensions where {ndim} were expected")
    header = 4 + 4 * file_ndim
    if len(data) < header:
        raise _bad(path, "truncated header")
    dims = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=file_ndim, offset=4))
    expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    found = len(data) - header
    if found != expected:
        kind = "truncated" if found < expected else "trailing bytes"
        raise _bad(path, f"{kind}: header {dims} needs {expected} data bytes, found {found}")
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(dims).astype(dtype.newbyteorder("="), copy=True)


def find_idx_file(directory: Path, stem: str) -> Path | None:
    """``<directory>/<stem>`` or ``<directory>/<stem>.gz``, whichever exists (raw first)."""
    for candidate in (directory / stem, directory / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    return None


def find_idx_dir(directories, stems) -> Path | None:
    """The first directory holding every stem (raw or gzipped), or None."""
    for directory in directories:
        if all(find_idx_file(Path(directory), stem) is not None for stem in stems):
            return Path(directory)
    return None


def load_idx_split(directory: Path, split: str, image_hw: tuple[int, int] | None = None,
                   num_classes: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Images ``uint8 [n, H, W]`` and labels ``int64 [n]`` of ``split`` from ``directory``."""
    image_stem, label_stem = IDX_FILES[split]
    image_path = find_idx_file(directory, image_stem)
    label_path = find_idx_file(directory, label_stem)
    if image_path is None or label_path is None:
        missing = image_stem if image_path is None else label_stem
        raise DataNotFoundError(f"{directory} lacks {missing}(.gz): put the idx files there")
    images = read_idx(image_path, ndim=3)
    labels = read_idx(label_path, ndim=1)
    if images.dtype != np.uint8 or labels.dtype != np.uint8:
        raise _bad(image_path if images.dtype != np.uint8 else label_path, "type is not unsigned byte")
    if image_hw is not None and tuple(images.shape[1:]) != tuple(image_hw):
        raise _bad(image_path, f"images are {images.shape[1]}x{images.shape[2]}, expected {image_hw[0]}x{image_hw[1]}")
    if images.shape[0] != labels.shape[0]:
        raise _bad(label_path, f"{labels.shape[0]} labels for {images.shape[0]} images in {image_path.name}")
    if num_classes is not None and labels.size and int(labels.max()) >= num_classes:
        raise _bad(label_path, f"label {int(labels.max())} outside 0..{num_classes - 1}")
    return images, labels.astype(np.int64)
