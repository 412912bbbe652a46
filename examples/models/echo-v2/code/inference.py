"""echo-v2: answers {"version": "v2", "input": <the request JSON>}. Blue/green demos deploy
echo-v1 then echo-v2 and tell the fleets apart by the version in each answer."""

import json

VERSION = "v2"
# Quick and non-blocking: run on the server's event loop (greenshift.fleet.handlers).
GREENSHIFT_INLINE = True


def model_fn(model_dir):
    return VERSION


def input_fn(body, content_type):
    return json.loads(body) if body else None


def predict_fn(data, model):
    return {"version": model, "input": data}


def output_fn(prediction, accept):
    return json.dumps(prediction), "application/json"
