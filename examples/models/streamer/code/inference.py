"""streamer: a token-streaming model for InvokeEndpointWithResponseStream.

The request JSON `{"parts": N, "delay": S, "fail_at": K}` (all optional: 20 parts, 0.05 s) makes
it yield N parts `"<version>:<i> "`, sleeping S seconds before each one after the first; with
`fail_at` it raises before part K (a mid-stream model error). The version comes from
`STREAMER_VERSION` (default "v1"), so a canary's two fleets tell their answers apart. Through
InvokeEndpoint the parts arrive joined.
"""

import json
import os
import time


def model_fn(model_dir):
    return os.environ.get("STREAMER_VERSION", "v1")


def input_fn(body, content_type):
    return json.loads(body) if body else {}


def predict_fn(data, model):
    return model, data


def output_fn(prediction, accept):
    version, data = prediction
    parts = int(data.get("parts", 20))
    delay = float(data.get("delay", 0.05))
    fail_at = data.get("fail_at")

    def generate():
        for i in range(parts):
            if i and delay:
                time.sleep(delay)
            if fail_at is not None and i == int(fail_at):
                raise RuntimeError(f"streamer failed at part {i}")
            yield f"{version}:{i} "

    return generate(), "text/plain"
