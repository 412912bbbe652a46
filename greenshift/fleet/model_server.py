"""The built-in model server lives in the self-contained package greenshift.fleet.serving; this
module keeps `python -m greenshift.fleet.model_server` working for Greenshift's own callers."""

from greenshift.fleet.serving.server import ModelApp, ModelServer, main, parse_args, render

__all__ = ["ModelApp", "ModelServer", "main", "parse_args", "render"]

if __name__ == "__main__":
    main()
