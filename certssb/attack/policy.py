"""Label policies: which training samples an attack poisons, which label they get, and what counts
as a successful attack at test time (``attack_labels`` is the one definition used for both)."""

from __future__ import annotations

from enum import Enum

import torch

from certssb.errors import ConfigError


class LabelPolicy(str, Enum):
    """Which training samples an attack poisons and which label they (and the attack) aim at.

    - ``all_to_one``: samples outside the target class, relabelled to ``target``; a triggered
      test input is a success when predicted as ``target`` (counted on non-target inputs).
    - ``all_to_all``: samples of any class, label ``y -> (y + 1) mod C``; a triggered test input
      is a success when predicted as ``(y + 1) mod C`` (counted on every input).
    - ``clean_label``: samples OF the target class, labels unchanged (SIG, label-consistent); a
      success is a prediction of ``target`` on a non-target input, as for ``all_to_one``.
    """

    ALL_TO_ONE = "all_to_one"
    ALL_TO_ALL = "all_to_all"
    CLEAN_LABEL = "clean_label"


def parse_policy(value) -> LabelPolicy:
    """``value`` as a ``LabelPolicy``; one-line ``ConfigError`` otherwise."""
    try:
        return LabelPolicy(value)
    except ValueError:
        names = ", ".join(p.value for p in LabelPolicy)
        raise ConfigError(f"attack.mode must be one of {names}; got {value!r}") from None


def poison_candidates(y: torch.Tensor, target: int, policy: LabelPolicy) -> torch.Tensor:
    """Indices of the training samples the policy may poison (increasing)."""
    policy = parse_policy(policy)
    if policy is LabelPolicy.ALL_TO_ONE:
        return torch.nonzero(y != target).flatten()
    if policy is LabelPolicy.CLEAN_LABEL:
        return torch.nonzero(y == target).flatten()
    return torch.arange(int(y.shape[0]))


def attack_labels(y: torch.Tensor, target: int, num_classes: int, policy: LabelPolicy) -> torch.Tensor:
    """The label the attacker wants for each sample of true label ``y`` (training relabelling and
    test-time success alike): ``target`` (all-to-one, clean-label) or ``(y + 1) mod C`` (all-to-all).
    """
    policy = parse_policy(policy)
    if policy is LabelPolicy.ALL_TO_ALL:
        return (y.to(torch.int64) + 1) % int(num_classes)
    return torch.full_like(y, int(target), dtype=torch.int64)


def attack_success_mask(y: torch.Tensor, target: int, policy: LabelPolicy) -> torch.Tensor:
    """Which triggered test inputs count for the ASR: non-target inputs, or all of them for all-to-all."""
    if parse_policy(policy) is LabelPolicy.ALL_TO_ALL:
        return torch.ones_like(y, dtype=torch.bool)
    return y != target


def attack_success_rate(pred: torch.Tensor, y: torch.Tensor, target: int, num_classes: int,
                        policy: LabelPolicy) -> float | None:
    """Share of counted triggered inputs (``attack_success_mask``) predicted as ``attack_labels``;
    None when no input counts."""
    pred, y = torch.as_tensor(pred), torch.as_tensor(y)
    mask = attack_success_mask(y, target, policy)
    if not bool(mask.any()):
        return None
    hits = pred[mask].to(torch.int64) == attack_labels(y[mask], target, num_classes, policy)
    return float(hits.to(torch.float64).mean())


BADNETS_MODES = (LabelPolicy.ALL_TO_ONE.value, LabelPolicy.ALL_TO_ALL.value)


def badnets_policy(mode: str = "all_to_one") -> LabelPolicy:
    """BadNets' ``mode`` knob (``all_to_one`` default, as in BackdoorBench; or ``all_to_all``) as a policy.

    Check: ``attack.mode must be one of all_to_one, all_to_all``.
    """
    if mode not in BADNETS_MODES:
        raise ConfigError(f"attack.mode must be one of {', '.join(BADNETS_MODES)}; got {mode!r}")
    return LabelPolicy(mode)
