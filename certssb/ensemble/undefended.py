"""The undefended reference: one model trained on the poisoned set without noise.

Its clean accuracy and attack success rate show that the attack works (METHOD.md section 4).
"""

from __future__ import annotations

import numpy as np

from certssb.ensemble.predict import predict_single
from certssb.ensemble.train import train_single


def undefended_reference(factory, splits, poisoned, ensemble, seed: int, device) -> dict:
    """``{"undefended_clean_accuracy", "undefended_asr"}`` of a noise-free model on the poisoned set.

    The ASR follows the attack's definition (``PoisonedData.counts_for_asr`` and ``attack_labels``):
    the share of triggered non-target inputs predicted as the target, or for all-to-all of every
    triggered input predicted as ``(y + 1) mod C``; None when no input counts.
    """
    model = train_single(factory, poisoned.x_train, poisoned.y_train, 0.0, ensemble, seed, "undefended", device)
    y_test = splits.y_test.numpy()
    pred_clean = predict_single(model, splits.x_test, ensemble.eval_batch_size, device)
    pred_trig = predict_single(model, poisoned.x_test_triggered, ensemble.eval_batch_size, device)
    counted = poisoned.counts_for_asr(splits.y_test).numpy()
    wanted = poisoned.attack_labels(splits.y_test).numpy()
    return {
        "undefended_clean_accuracy": float(np.mean(pred_clean == y_test)),
        "undefended_asr": float(np.mean(pred_trig[counted] == wanted[counted])) if counted.any() else None,
    }
