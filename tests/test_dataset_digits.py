"""certssb.dataset: the bundled digits, class selection/remapping, subsampling, dataset_info."""


import pytest
import torch

from certssb.config import load_option
from certssb.dataset import DatasetSplits, Uint8Images, load_dataset
from certssb.errors import ConfigError


def cfg(**kw):
    return load_option("dataset", "digits", **kw)


@pytest.fixture(scope="module")
def digits():
    return load_dataset(cfg(), seed=0).to_float()  # the values as float32 tensors


def test_digits_shapes_dtypes_ranges(digits):
    assert isinstance(digits, DatasetSplits)
    assert digits.name == "digits"
    assert digits.x_train.shape == (1438, 1, 8, 8) and digits.x_test.shape == (359, 1, 8, 8)
    assert digits.x_train.dtype == torch.float32 and digits.y_train.dtype == torch.int64
    held = load_dataset(cfg(), seed=0)  # as load_dataset holds them: uint8, 0..16
    assert isinstance(held.x_train, Uint8Images) and held.x_train.data.dtype == torch.uint8
    assert held.x_train.scale == 16.0 and torch.equal(held.x_train.to_float(), digits.x_train)
    assert digits.y_test.dtype == torch.int64
    for x in (digits.x_train, digits.x_test):
        assert x.min() >= 0.0 and x.max() <= 1.0
        assert x.max() == 1.0  # 16/16 occurs
    # values are multiples of 1/16 (0..16 scaled)
    assert torch.allclose(digits.x_train * 16, (digits.x_train * 16).round())
    assert digits.num_classes == 10 and digits.class_names == [str(i) for i in range(10)]
    assert set(digits.y_train.tolist()) == set(range(10)) == set(digits.y_test.tolist())
    assert digits.input_shape == (1, 8, 8)


def test_digits_test_set_fixed_across_run_seeds(digits):
    other = load_dataset(cfg(), seed=123).to_float()
    assert torch.equal(other.x_test, digits.x_test) and torch.equal(other.y_test, digits.y_test)
    assert torch.equal(other.x_train, digits.x_train)


def test_digits_split_partitions_the_data(digits):
    from sklearn.datasets import load_digits

    allx = torch.from_numpy(load_digits().images).float().flatten(1) / 16
    both = torch.cat([digits.x_train, digits.x_test]).flatten(1)
    assert both.shape[0] == allx.shape[0] == 1797
    # same multiset of images: sort rows lexicographically via a hash-free comparison
    key = lambda t: sorted(map(tuple, (t * 16).round().to(torch.int64).tolist()))  # noqa: E731
    assert key(both) == key(allx)


def test_digits_test_fraction(digits):
    d = load_dataset(cfg(test_fraction=0.5), seed=0)
    assert d.x_test.shape[0] == 899 and d.x_train.shape[0] == 898
    with pytest.raises(ConfigError, match="^dataset.test_fraction must be in"):
        cfg(test_fraction=1.5).check(None)


def test_class_selection_and_remap(digits):
    d = load_dataset(cfg(classes=[3, 1]), seed=0).to_float()
    assert d.num_classes == 2 and d.class_names == ["3", "1"]
    assert set(d.y_train.tolist()) == {0, 1}
    assert (d.y_train == 0).sum() == (digits.y_train == 3).sum()
    assert (d.y_train == 1).sum() == (digits.y_train == 1).sum()
    # images of new class 0 are exactly the original class-3 images, in order
    assert torch.equal(d.x_train[d.y_train == 0], digits.x_train[digits.y_train == 3])
    assert torch.equal(d.x_test[d.y_test == 1], digits.x_test[digits.y_test == 1])


@pytest.mark.parametrize("classes", [[0, 10], [-1], [1, 1], [], "01", [0.5]])
def test_bad_classes_raise_config_error(classes):
    with pytest.raises(ConfigError, match="dataset.classes") as info:
        load_dataset(cfg(classes=classes), seed=0)
    assert "\n" not in str(info.value)


def test_subsampling_seeded_and_reproducible(digits):
    a = load_dataset(cfg(train_size=100, test_size=50), seed=7).to_float()
    b = load_dataset(cfg(train_size=100, test_size=50), seed=7).to_float()
    c = load_dataset(cfg(train_size=100, test_size=50), seed=8).to_float()
    assert a.x_train.shape == (100, 1, 8, 8) and a.x_test.shape == (50, 1, 8, 8)
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_test, b.y_test)
    assert not torch.equal(a.x_train, c.x_train)
    # a subset of the full training set
    full = {tuple(r) for r in digits.x_train.flatten(1).tolist()}
    assert all(tuple(r) in full for r in a.x_train.flatten(1).tolist())


def test_subsampling_after_class_selection():
    d = load_dataset(cfg(classes=[0, 1], train_size=40), seed=0)
    assert d.x_train.shape[0] == 40 and set(d.y_train.tolist()) <= {0, 1}
    with pytest.raises(ConfigError, match="train_size"):
        load_dataset(cfg(classes=[0, 1], train_size=10_000), seed=0)
    with pytest.raises(ConfigError, match="^dataset.test_size must be null or >= 1"):
        cfg(test_size=0).check(None)


def test_unknown_option():
    with pytest.raises(ConfigError, match="dataset=imagenet is not an option"):
        load_option("dataset", "imagenet")


def test_unknown_key_is_rejected():
    with pytest.raises(ConfigError, match="dataset.data_dir is not a setting"):
        load_option("dataset", "digits", data_dir="/tmp")


def test_static_facts_live_with_each_option():
    info = {n: load_option("dataset", n) for n in ("digits", "mnist", "fashion_mnist", "cifar10")}
    assert info["digits"].input_shape == (1, 8, 8) and list(info["digits"].class_names) == [str(i) for i in range(10)]
    assert info["mnist"].input_shape == (1, 28, 28)
    assert info["fashion_mnist"].class_names[0] == "T-shirt/top"
    cifar = info["cifar10"]
    assert cifar.input_shape == (3, 32, 32) and cifar.num_classes_all == 10
    assert cifar.class_names[0] == "airplane" and cifar.class_names[2] == "bird"
    assert load_option("dataset", "digits", classes=[1, 0]).num_classes() == 2
