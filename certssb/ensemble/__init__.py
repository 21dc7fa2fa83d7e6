"""The smoothed ensemble: counter-based member noise, checkpoints, training and prediction."""

from certssb.ensemble._source import resolve_precision
from certssb.ensemble.checkpoints import CheckpointStore, fingerprint_of
from certssb.ensemble.device import device_report, resolve_device
from certssb.ensemble.noise import member_noise
from certssb.ensemble.predict import MemberVotes, predict_members, predict_single
from certssb.ensemble.predict_grid import predict_grid
from certssb.ensemble.train import train_members, train_single

__all__ = ["CheckpointStore", "fingerprint_of", "device_report", "resolve_device", "member_noise", "MemberVotes",
           "predict_grid", "predict_members", "predict_single", "resolve_precision", "train_members", "train_single"]
