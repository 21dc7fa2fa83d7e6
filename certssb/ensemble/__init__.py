"""The ensemble (config group ``ensemble``): its options (:mod:`.gaussian`, and the count-certified
family), counter-based member noise, checkpoints, training and prediction."""

from certssb.ensemble.checkpoints import CheckpointStore, fingerprint_of
from certssb.ensemble.device import device_report, resolve_device
from certssb.ensemble.noise import member_noise
from certssb.ensemble.precision import resolve_precision
from certssb.ensemble.predict import (MemberVotes, ModelVotes, EvalInputs, load_member, predict_members,
                                      predict_models, predict_single)
from certssb.ensemble.predict_grid import GridSpec, predict_grid
from certssb.ensemble.settings import EnsembleSettings
from certssb.ensemble.speed import FitSpec
from certssb.ensemble.train import train_members, train_single
from certssb.ensemble.training_data import TrainingData

__all__ = [
    "CheckpointStore",
    "EnsembleSettings",
    "FitSpec",
    "GridSpec",
    "EvalInputs",
    "TrainingData",
    "fingerprint_of",
    "device_report",
    "resolve_device",
    "member_noise",
    "MemberVotes",
    "ModelVotes",
    "load_member",
    "predict_grid",
    "predict_members",
    "predict_models",
    "predict_single",
    "resolve_precision",
    "train_members",
    "train_single",
]
