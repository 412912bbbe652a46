"""The built-in model server, as a self-contained package: standard library plus its own few
runtime needs (numpy for the toolkit's codecs, httptools, uvloop), never Greenshift.

Why self-contained: a model runs in an environment of its own (greenshift.fleet.modelenv) that
holds the model's requirements and this server's, not Greenshift. The built-in runtime copies this
folder into the environment cache and runs it as a file with `python -I` (no PYTHONPATH, no user
site, no working directory on sys.path), so model code can import neither `greenshift` nor
`temporalio`, and sees only the environment the runtime gives it. Every import here is relative.
"""
