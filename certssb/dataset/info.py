"""Static facts about each dataset (shape, classes, default model), available without loading data."""

from __future__ import annotations

from certssb.errors import ConfigError

DIGIT_NAMES = [str(i) for i in range(10)]
FASHION_MNIST_NAMES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]
CIFAR10_NAMES = [
    "airplane", "automobile", "bird", "cat", "deer",
    "dog", "frog", "horse", "ship", "truck",
]

#: name -> (input_shape (C, H, W), number of classes, class names)
DATASETS: dict[str, tuple[tuple[int, int, int], int, list[str]]] = {
    "digits": ((1, 8, 8), 10, DIGIT_NAMES),
    "fashion_mnist": ((1, 28, 28), 10, FASHION_MNIST_NAMES),
    "mnist": ((1, 28, 28), 10, DIGIT_NAMES),
    "cifar10": ((3, 32, 32), 10, CIFAR10_NAMES),
}

#: the model config a dataset uses unless the user picks another
DEFAULT_MODEL = {
    "digits": "mlp",
    "fashion_mnist": "mnist_cnn",
    "mnist": "mnist_cnn",
    "cifar10": "preact_resnet32",
}


def check_name(name) -> str:
    if name not in DATASETS:
        raise ConfigError(f"dataset.name={name!r} is unknown: use one of {', '.join(sorted(DATASETS))}")
    return name


def dataset_info(name: str) -> tuple[tuple[int, int, int], int, list[str]]:
    """``(input_shape, num_classes_all, class_names)`` of a dataset, without reading any file."""
    shape, num_classes, names = DATASETS[check_name(name)]
    return shape, num_classes, list(names)
