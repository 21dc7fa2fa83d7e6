"""Test hook (on PYTHONPATH only in tests/test_sweep.py's kill-and-resume test): after
``CERTSSB_FREEZE_AFTER_SAVES`` member checkpoints are saved in this process, create the file
``CERTSSB_FREEZE_MARKER`` and block until killed. The test waits for that file, then kills the
sweep: the kill lands at a known point whatever the machine's speed."""

import os

_after = os.environ.get("CERTSSB_FREEZE_AFTER_SAVES")
_marker = os.environ.get("CERTSSB_FREEZE_MARKER")

if _after and _marker:
    import threading

    from certssb.ensemble import checkpoints as _checkpoints

    _real_save = _checkpoints.CheckpointStore.save
    _count = {"n": 0}

    def _save_then_freeze(self, k, *args, **kwargs):
        path = _real_save(self, k, *args, **kwargs)
        _count["n"] += 1
        if _count["n"] >= int(_after):
            with open(_marker, "w") as fh:
                fh.write(str(path))
            threading.Event().wait()  # until the test kills this process
        return path

    _checkpoints.CheckpointStore.save = _save_then_freeze
