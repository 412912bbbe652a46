"""slow: answers like echo after SLOW_MS milliseconds (environment, default 200). Drives the
ModelLatency-alarm demos. A body {"fail": true} fails after the same wait (a slow HTTP 500).
The sleep blocks, so the handlers run in the server's worker threads (no GREENSHIFT_INLINE)."""

import json
import os
import time


def model_fn(model_dir):
    return float(os.environ.get("SLOW_MS", "200")) / 1000.0


def input_fn(body, content_type):
    return json.loads(body) if body else None


def predict_fn(data, model):
    time.sleep(model)
    if isinstance(data, dict) and data.get("fail"):
        raise RuntimeError("slow model: failed as asked")
    return {"version": "slow", "input": data}
