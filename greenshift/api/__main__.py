"""`python -m greenshift.api`: the control API with settings from the environment."""

from greenshift import temporal
from greenshift.api.server import serve_api
from greenshift.settings import Settings

if __name__ == "__main__":
    # Ends without the interpreter's teardown (greenshift/temporal.py says why).
    temporal.run_process(lambda: serve_api(Settings()))
