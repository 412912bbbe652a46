"""The control-plane HTTP server: SageMaker JSON 1.1, Greenshift extensions, CloudWatch, SigV4.

Entry points: `greenshift.api.server.serve_api(settings)`, `python -m greenshift.api`, and
`greenshift.api.app.build_app(ctx)` for tests and embedding.
"""
