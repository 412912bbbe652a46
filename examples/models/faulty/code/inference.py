"""faulty: healthy on /ping, HTTP 500 on every invocation. Drives the 5XX-alarm rollback demos."""

GREENSHIFT_INLINE = True


def model_fn(model_dir):
    return "faulty"


def predict_fn(data, model):
    raise RuntimeError("faulty model: every invocation fails")
