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

GTSRB_NAMES = [
    "Speed limit (20km/h)", "Speed limit (30km/h)", "Speed limit (50km/h)", "Speed limit (60km/h)",
    "Speed limit (70km/h)", "Speed limit (80km/h)", "End of speed limit (80km/h)", "Speed limit (100km/h)",
    "Speed limit (120km/h)", "No passing", "No passing for vehicles over 3.5 metric tons",
    "Right-of-way at the next intersection", "Priority road", "Yield", "Stop", "No vehicles",
    "Vehicles over 3.5 metric tons prohibited", "No entry", "General caution", "Dangerous curve to the left",
    "Dangerous curve to the right", "Double curve", "Bumpy road", "Slippery road", "Road narrows on the right",
    "Road work", "Traffic signals", "Pedestrians", "Children crossing", "Bicycles crossing",
    "Beware of ice/snow", "Wild animals crossing", "End of all speed and passing limits", "Turn right ahead",
    "Turn left ahead", "Ahead only", "Go straight or right", "Go straight or left", "Keep right", "Keep left",
    "Roundabout mandatory", "End of no passing", "End of no passing by vehicles over 3.5 metric tons",
]
CIFAR100_NAMES = """
apple aquarium_fish baby bear beaver bed bee beetle bicycle bottle bowl boy bridge bus butterfly camel
can castle caterpillar cattle chair chimpanzee clock cloud cockroach couch crab crocodile cup dinosaur
dolphin elephant flatfish forest fox girl hamster house kangaroo keyboard lamp lawn_mower leopard lion
lizard lobster man maple_tree motorcycle mountain mouse mushroom oak_tree orange orchid otter palm_tree
pear pickup_truck pine_tree plain plate poppy porcupine possum rabbit raccoon ray road rocket rose sea
seal shark shrew skunk skyscraper snail snake spider squirrel streetcar sunflower sweet_pepper table
tank telephone television tiger tractor train trout tulip turtle wardrobe whale willow_tree wolf woman
worm
""".split()
#: ImageNette's classes in torchvision's order (sorted WordNet ids n01440764 .. n03888257)
IMAGENETTE_NAMES = [
    "tench", "English springer", "cassette player", "chain saw", "church",
    "French horn", "garbage truck", "gas pump", "golf ball", "parachute",
]

#: name -> (input_shape (C, H, W), number of classes, class names)
DATASETS: dict[str, tuple[tuple[int, int, int], int, list[str]]] = {
    "digits": ((1, 8, 8), 10, DIGIT_NAMES),
    "fashion_mnist": ((1, 28, 28), 10, FASHION_MNIST_NAMES),
    "mnist": ((1, 28, 28), 10, DIGIT_NAMES),
    "cifar10": ((3, 32, 32), 10, CIFAR10_NAMES),
}

#: The image datasets read by gtsrb.py, cifar100.py, svhn.py and imagenette.py, not yet selectable
#: by ``dataset.name`` (they join DATASETS once their config options exist). The shapes are those of
#: the default ``image_size`` (GTSRB 32, ImageNette 224); ``image_folder``'s facts come from the
#: folder: :func:`certssb.dataset.image_folder.image_folder_info`.
IMAGE_DATASETS: dict[str, tuple[tuple[int, int, int], int, list[str]]] = {
    "gtsrb": ((3, 32, 32), 43, GTSRB_NAMES),
    "cifar100": ((3, 32, 32), 100, CIFAR100_NAMES),
    "svhn": ((3, 32, 32), 10, DIGIT_NAMES),
    "imagenette": ((3, 224, 224), 10, IMAGENETTE_NAMES),
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
