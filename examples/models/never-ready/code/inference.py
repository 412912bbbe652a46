"""never-ready: model_fn never returns, so the server's /ping answers 503 for ever and a launch
fails its startup health check ("did not pass the ping health check")."""

import threading


def model_fn(model_dir):
    threading.Event().wait()  # forever; the server loads models in a daemon thread
