"""`python -m greenshift.api`: the control API with settings from the environment."""

from greenshift.api.server import serve_api
from greenshift.settings import Settings

if __name__ == "__main__":
    serve_api(Settings())
