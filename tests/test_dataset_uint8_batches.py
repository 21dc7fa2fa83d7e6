"""certssb.dataset.uint8_batches: uint8 images handed out as float batches in [0, 1]."""

import pytest
import torch

from certssb.dataset.uint8_batches import Uint8Images
from certssb.errors import ConfigError


@pytest.fixture
def images():
    gen = torch.Generator().manual_seed(0)
    return Uint8Images(torch.randint(0, 256, (10, 3, 4, 5), dtype=torch.uint8, generator=gen), scale=255.0)


def test_batches_equal_the_whole_float_conversion(images):
    # the reference is the conversion load_dataset applies today (x.float() / scale): exact, same op
    reference = images.data.to(torch.float32) / 255.0
    assert torch.equal(torch.cat(list(images.batches(3))), reference)
    assert [len(b) for b in images.batches(4)] == [4, 4, 2]
    assert torch.equal(images.to_float(), reference)
    assert images.data.dtype == torch.uint8  # nothing converted in place


def test_indexing_by_int_slice_list_and_tensor(images):
    reference = images.data.to(torch.float32) / 255.0
    index = torch.tensor([7, 0, 7, 3])
    assert torch.equal(images[index], reference[index])
    assert torch.equal(images[[1, 2]], reference[[1, 2]])
    assert torch.equal(images[2:5], reference[2:5])
    assert images[4].shape == (3, 4, 5) and torch.equal(images[4], reference[4])
    out = images[index]
    assert out.dtype == torch.float32 and out.min() >= 0 and out.max() <= 1
    assert len(images) == 10 and images.shape == (10, 3, 4, 5) and images.input_shape == (3, 4, 5)


def test_subset_stays_uint8_and_other_scales(images):
    sub = images.subset(torch.tensor([9, 8]))
    assert sub.data.dtype == torch.uint8 and torch.equal(sub[0], images[9])
    digits = Uint8Images(torch.tensor([[[[0, 8, 16]]]], dtype=torch.uint8), scale=16.0)
    assert digits[0].flatten().tolist() == [0.0, 0.5, 1.0]
    half = images.batch(slice(0, 2), dtype=torch.float64)
    assert half.dtype == torch.float64


def test_memory_is_a_quarter_of_float32(images):
    assert images.data.element_size() * 4 == images.to_float().element_size()


def test_rejects_float_images_and_bad_batch_size(images):
    with pytest.raises(ValueError, match="integers"):
        Uint8Images(torch.zeros(2, 1, 3, 3))
    with pytest.raises(ValueError, match=r"\[n, C, H, W\]"):
        Uint8Images(torch.zeros(2, 3, 3, dtype=torch.uint8))
    with pytest.raises(ConfigError, match="batch_size must be an integer >= 1; got 0"):
        next(images.batches(0))
