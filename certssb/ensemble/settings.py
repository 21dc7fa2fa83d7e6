"""What every ``ensemble`` option provides: how its models train and predict (the knobs shared by
every option, in ``conf/ensemble/_training.yaml``) and what each model trains on.

Two families (docs/METHOD.md sections 2 and 8): ``gaussian`` trains N members on the whole set, each
with its own fixed Gaussian noise (RAB, Cert-SSB); the count-certified options (``partition``,
``finite_aggregation``, ``bagging``) train each model on its own part or bag of the training set
without noise. ``n_members`` is the number of models every option trains (model ``k`` is "member
k": its seed, checkpoint and ``member_range`` slot).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, List, Optional

import torch
from omegaconf import MISSING

from certssb.config import Option
from certssb.errors import ConfigError

DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("auto", "fp32", "bf16")
VECTORISE = ("auto", "true", "false", "vmap", "grouped", "measure")
ADAM = ("default", "foreach", "fused")
COMPILE = ("eager", "inductor", "cudagraphs")
SHUFFLE = ("host", "device")


@dataclass
class EnsembleSettings(Option):
    """Base of the ``ensemble`` options: the training and prediction knobs every model shares."""

    config_group: ClassVar[str] = "ensemble"
    #: keys that change how a run executes, not its results (left out of fingerprints and sweep folder names)
    execution_keys: ClassVar[tuple] = ("device", "vectorise", "group_size", "eval_batch_size", "checkpoint_dir",
                                       "adam", "pad_batches", "compile")
    #: ``gaussian`` (members with their own noise) or ``count`` (models on parts or bags, no noise)
    family: ClassVar[str] = "gaussian"

    epochs: int = MISSING
    batch_size: int = MISSING
    lr: float = MISSING
    vectorise: Any = MISSING
    group_size: Optional[int] = MISSING
    eval_batch_size: int = MISSING
    device: str = MISSING
    precision: str = MISSING
    member_range: Optional[List[int]] = MISSING
    checkpoint_dir: Optional[str] = MISSING
    deterministic: bool = MISSING
    # speed switches (certssb/ensemble/speed.py); the defaults are the reference path
    adam: str = MISSING
    pad_batches: bool = MISSING
    compile: str = MISSING
    shuffle: str = MISSING

    @property
    def n_members(self) -> int:
        """The number of models this option trains."""
        raise NotImplementedError

    def check(self, run) -> None:
        for key in ("epochs", "batch_size", "eval_batch_size"):
            self.require_range(key, 1, None)
        self.require_range("lr", 0.0, None, low_open=True)
        self.require_choice("device", DEVICES)
        self.require_choice("precision", PRECISIONS)
        if self.vectorise_mode() not in VECTORISE:
            self.fail("vectorise", f"must be one of {', '.join(VECTORISE)}; got {self.vectorise!r}")
        self.check_speed(run)
        if self.group_size is not None and self.group_size < 1:
            self.fail("group_size", f"must be null or >= 1; got {self.group_size}")
        rng, n = self.member_range, self.n_members
        if rng is not None and (len(rng) != 2 or not 0 <= rng[0] < rng[1] <= n):
            self.fail("member_range", f"must be [start, stop] with 0 <= start < stop <= {n} (the models of "
                                      f"ensemble={self.name}); got {list(rng)}")
        sigma = getattr(run, "sigma_optimiser", None)
        if sigma is not None and sigma.adds_noise != (self.family == "gaussian"):
            if self.family == "gaussian":
                self.fail_option(f"trains members with Gaussian noise, but sigma_optimiser={sigma.name} adds none: "
                                 "choose sigma_optimiser=fixed, sga, grid, ... (or a count-certified ensemble: "
                                 "partition, finite_aggregation, bagging)")
            self.fail_option(f"trains its models without noise (a count-certified defence), but "
                             f"sigma_optimiser={sigma.name} adds noise: use sigma_optimiser=none")

    def check_speed(self, run) -> None:
        """The speed switches (one-line errors; see ``certssb/ensemble/speed.py``)."""
        self.require_choice("adam", ADAM)
        self.require_choice("compile", COMPILE)
        self.require_choice("shuffle", SHUFFLE)
        if not isinstance(self.pad_batches, bool):
            self.fail("pad_batches", f"must be true or false; got {self.pad_batches!r}")
        if self.compile == "cudagraphs" and self.device == "cpu":
            raise ConfigError("ensemble.compile=cudagraphs captures CUDA graphs and needs ensemble.device=cuda (or "
                              "auto on a GPU); use compile=eager or inductor on the CPU")
        if self.compile != "eager" and self.vectorise_mode() == "false":
            raise ConfigError(f"ensemble.compile={self.compile} compiles the vectorised training step, but "
                              "ensemble.vectorise=false trains one model at a time; use vectorise=auto, vmap or "
                              "grouped (or compile=eager)")
        if self.vectorise_mode() == "grouped" and run is not None and getattr(run, "model", None) is not None:
            from certssb.ensemble.grouped import unsupported_modules
            dataset = run.dataset
            model = run.model.build(tuple(dataset.input_shape), int(dataset.num_classes()))
            bad = unsupported_modules(model)
            if bad:
                raise ConfigError(f"ensemble.vectorise=grouped cannot stack model={run.model.name} along the channel "
                                  f"axis ({bad}); use vectorise=vmap")

    def vectorise_mode(self) -> str:
        """``auto`` | ``true`` | ``false`` | ``vmap`` | ``grouped`` | ``measure`` (yaml booleans
        accepted; ``true`` is ``vmap``)."""
        if isinstance(self.vectorise, bool):
            return "true" if self.vectorise else "false"
        return str(self.vectorise).strip().lower()

    def results_plain(self) -> dict:
        """What determines the results: the :attr:`execution_keys` and ``shuffle`` at its default
        (``host``: the fingerprints of runs made before the key existed stay the same) left out."""
        out = super().results_plain()
        if out.get("shuffle") == "host":
            out.pop("shuffle")
        return out

    def training_subsets(self, x_train, y_train, seed: int) -> list[torch.Tensor] | None:
        """The training-sample indices of every model (int64 tensors), or None: every model trains on
        the whole set (the Gaussian family, whose members differ by their noise)."""
        return None

    def models_fingerprint(self) -> dict:
        """What identifies the trained models beyond data, model and training settings (e.g. the
        partition); part of the members' checkpoint fingerprint. Empty for the Gaussian family."""
        return {}
