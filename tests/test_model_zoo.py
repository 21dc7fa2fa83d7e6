"""PreAct-ResNet-18 and torchvision's ResNet-18 with a local weights file."""

import pytest
import torch
import torchvision

from certssb.errors import ConfigError
from certssb.model.preact_resnet18 import preact_resnet18
from certssb.model.resnet18 import resnet18


def n_params(model):
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("shape, stem", [((3, 32, 32), "cifar"), ((1, 8, 8), "cifar"), ((1, 28, 28), "cifar"),
                                         ((3, 5, 7), "cifar"), ((3, 64, 64), "imagenet"), ((1, 8, 8), "imagenet")])
def test_preact_resnet18_shapes(shape, stem):
    model = preact_resnet18(shape, 7, stem=stem).eval()
    out = model(torch.rand(2, *shape))
    assert out.shape == (2, 7) and torch.isfinite(out).all()


def test_preact_resnet18_is_backdoorbench_size():
    """BackdoorBench's PreActResNet18 at 10 classes has 11,171,146 parameters: 8 blocks of two 3x3
    convolutions, 3 shortcut 1x1 convolutions, BatchNorms, a 3x3 stem and a 512x10 classifier."""
    widths, convs = [64, 64, 128, 128, 256, 256, 512, 512], 0
    prev = 64
    for w in widths:
        convs += 9 * prev * w + 9 * w * w + 2 * (prev + w) + (prev * w if prev != w else 0)  # conv1, conv2, bn1, bn2, shortcut
        prev = w
    expected = 3 * 64 * 9 + convs + 512 * 10 + 10
    assert expected == 11_171_146
    assert n_params(preact_resnet18((3, 32, 32), 10)) == expected


def test_preact_resnet18_deterministic_under_manual_seed():
    torch.manual_seed(0)
    a = preact_resnet18((1, 8, 8), 3).state_dict()
    torch.manual_seed(0)
    b = preact_resnet18((1, 8, 8), 3).state_dict()
    torch.manual_seed(1)
    c = preact_resnet18((1, 8, 8), 3).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["stem.weight"], c["stem.weight"])


def test_preact_resnet18_bad_stem():
    with pytest.raises(ConfigError, match="model.stem"):
        preact_resnet18((3, 32, 32), 10, stem="vit")


@pytest.mark.parametrize("shape", [(3, 224, 224), (3, 32, 32), (1, 28, 28), (1, 8, 8)])
def test_resnet18_shapes(shape):
    model = resnet18(shape, 2).eval()
    with torch.no_grad():
        out = model(torch.rand(1, *shape))
    assert out.shape == (1, 2) and model.conv1.in_channels == shape[0] and model.replaced_layers == []
    assert isinstance(model, torchvision.models.ResNet)


def test_resnet18_deterministic_under_manual_seed():
    torch.manual_seed(3)
    a = resnet18((1, 8, 8), 2).state_dict()
    torch.manual_seed(3)
    b = resnet18((1, 8, 8), 2).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture(scope="module")
def imagenet_like(tmp_path_factory):
    """A file shaped like torchvision's ImageNet weights (3 channels, 1000 classes)."""
    torch.manual_seed(11)
    source = torchvision.models.resnet18(weights=None, num_classes=1000)
    path = tmp_path_factory.mktemp("weights") / "resnet18.pt"
    torch.save(source.state_dict(), path)
    return path, source.state_dict()


def test_resnet18_weights_round_trip(tmp_path):
    torch.manual_seed(5)
    trained = resnet18((3, 32, 32), 4).eval()
    path = tmp_path / "mine.pt"
    torch.save(trained.state_dict(), path)
    torch.manual_seed(6)  # another init: everything must come from the file
    loaded = resnet18((3, 32, 32), 4, weights=str(path)).eval()
    assert loaded.replaced_layers == []
    assert all(torch.equal(v, loaded.state_dict()[k]) for k, v in trained.state_dict().items())
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(loaded(x), trained(x))


def test_resnet18_replaces_fc_and_conv1_where_shapes_differ(imagenet_like):
    path, state = imagenet_like
    two = resnet18((3, 64, 64), 2, weights=path)
    assert two.replaced_layers == ["fc"] and two.fc.out_features == 2
    assert torch.equal(two.conv1.weight, state["conv1.weight"]) and torch.equal(two.layer4[1].bn2.running_var,
                                                                                   state["layer4.1.bn2.running_var"])
    grey = resnet18((1, 28, 28), 1000, weights=path)
    assert grey.replaced_layers == ["conv1"] and grey.conv1.weight.shape == (64, 1, 7, 7)
    assert torch.equal(grey.fc.weight, state["fc.weight"])


def test_resnet18_weights_errors(tmp_path, imagenet_like):
    missing = tmp_path / "nope.pt"
    with pytest.raises(ConfigError, match="model.weights=.*nope.pt.*file not found") as info:
        resnet18((3, 32, 32), 2, weights=str(missing))
    assert "\n" not in str(info.value)
    other = tmp_path / "preact.pt"
    torch.save(preact_resnet18((3, 32, 32), 2).state_dict(), other)
    with pytest.raises(ConfigError, match="preact.pt.*does not match resnet18"):
        resnet18((3, 32, 32), 2, weights=other)
    wrong_shape = tmp_path / "narrow.pt"
    state = dict(imagenet_like[1])
    state["layer1.0.conv1.weight"] = torch.zeros(64, 64, 1, 1)
    torch.save(state, wrong_shape)
    with pytest.raises(ConfigError, match="layer1.0.conv1.weight has shape"):
        resnet18((3, 32, 32), 2, weights=wrong_shape)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(ConfigError, match="garbage.pt.*not a loadable state dict") as info:
        resnet18((3, 32, 32), 2, weights=garbage)
    assert "\n" not in str(info.value)
    pickled = tmp_path / "module.pt"
    torch.save({"model": [1, 2]}, pickled)
    with pytest.raises(ConfigError, match="state dict of tensors"):
        resnet18((3, 32, 32), 2, weights=pickled)
