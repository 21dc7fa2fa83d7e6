
import pytest
import torch

from certssb.errors import ConfigError
from certssb.config import load_option
from certssb.model import build_model, has_batchnorm, model_factory


def S(name, **kw):
    return load_option("model", name, **kw)

CASES = [("mnist_cnn", (1, 28, 28), 10), ("mnist_cnn", (1, 16, 16), 2), ("mnist_cnn", (3, 32, 32), 2),
         ("preact_resnet32", (3, 32, 32), 10), ("digits_cnn", (1, 8, 8), 10), ("digits_cnn", (3, 9, 7), 3),
         ("mlp", (1, 8, 8), 10)]


@pytest.mark.parametrize("name,shape,c", CASES)
def test_every_model_maps_to_logits(name, shape, c):
    model = build_model(S(name=name), shape, c)
    out = model(torch.rand(2, *shape))
    assert out.shape == (2, c) and torch.isfinite(out).all()


def test_mlp_hidden_layers():
    m = build_model(S(name="mlp", hidden=[32, 16]), (1, 8, 8), 4)
    assert [l.out_features for l in m.modules() if isinstance(l, torch.nn.Linear)] == [32, 16, 4]


def test_unknown_option_is_one_line():
    with pytest.raises(ConfigError) as e:
        S(name="vgg")
    assert "model=vgg is not an option" in str(e.value) and "\n" not in str(e.value)


def test_bad_shapes_and_classes():
    with pytest.raises(ConfigError):
        build_model(S(name="mnist_cnn"), (1, 8, 8), 10)
    with pytest.raises(ConfigError):
        build_model(S(name="mlp"), (1, 8), 10)
    with pytest.raises(ConfigError):
        build_model(S(name="mlp"), (1, 8, 8), 1)


def test_factory_is_deterministic_under_seed_and_fresh():
    f = model_factory(S(name="digits_cnn"), (1, 8, 8), 10)
    torch.manual_seed(3)
    a = f()
    torch.manual_seed(3)
    b = f()
    assert a is not b
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)


def test_batchnorm_detection():
    assert has_batchnorm(build_model(S(name="preact_resnet32"), (3, 32, 32), 2))
    assert not has_batchnorm(build_model(S(name="digits_cnn"), (1, 8, 8), 2))
    assert not has_batchnorm(build_model(S(name="mnist_cnn"), (1, 28, 28), 2))
