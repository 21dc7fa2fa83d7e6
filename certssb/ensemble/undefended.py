"""The undefended reference: one model trained on the poisoned set without noise.

Its clean accuracy and attack success rate show that the attack works (METHOD.md section 4).
"""

from __future__ import annotations

import numpy as np

from certssb.ensemble.predict import predict_single
from certssb.ensemble.train import train_single


def undefended_reference(factory, splits, poisoned, ensemble, seed: int, device) -> dict:
    """``{"undefended_clean_accuracy", "undefended_asr"}`` of a noise-free model on the poisoned set
    (ASR on the triggered non-target test inputs; None when every test input is of the target)."""
    model = train_single(factory, poisoned.x_train, poisoned.y_train, 0.0, ensemble, seed, "undefended", device)
    y_test = splits.y_test.numpy()
    pred_clean = predict_single(model, splits.x_test, ensemble.eval_batch_size, device)
    pred_trig = predict_single(model, poisoned.x_test_triggered, ensemble.eval_batch_size, device)
    non_target = y_test != poisoned.target
    return {
        "undefended_clean_accuracy": float(np.mean(pred_clean == y_test)),
        "undefended_asr": float(np.mean(pred_trig[non_target] == poisoned.target)) if non_target.any() else None,
    }
