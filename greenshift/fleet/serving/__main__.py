"""Entry point. `python -m greenshift.fleet.serving` (tests, a source checkout), or the built-in
runtime's isolated `python -I <copy>/<package>/__main__.py`: run as a file, the package's
parent folder (which holds nothing else) is put on sys.path and the package imported by its
folder's name, so the relative imports inside it work under any name."""

import importlib
import os
import sys

if __package__:
    from .server import main
else:
    _here = os.path.dirname(os.path.abspath(__file__))
    sys.path.insert(0, os.path.dirname(_here))
    main = importlib.import_module(f"{os.path.basename(_here)}.server").main

if __name__ == "__main__":
    main()
