"""The environments Greenshift hands out: to its own child processes (the settings, as
GREENSHIFT_* variables) and to a user's boto3 or AWS CLI (the endpoints, region and keys)."""

from __future__ import annotations

import os

from greenshift.settings import Settings


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that hands `settings` to a child process (GREENSHIFT_*)."""
    env = dict(os.environ)
    for name, value in settings.model_dump().items():
        if value is not None:
            env[f"GREENSHIFT_{name.upper()}"] = str(value)
    env["GREENSHIFT_HOME"] = str(settings.home_dir)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def client_environment(settings: Settings) -> dict[str, str]:
    """The environment to paste so boto3 and the AWS CLI talk to this Greenshift.

    Without access keys any key is accepted, so a placeholder pair does. With keys configured the
    first key's real id is shown; its secret is not printed (banners end up in logs and
    scrollback): the line names where it is configured instead."""
    env = {
        "AWS_ENDPOINT_URL_SAGEMAKER": settings.api_url,
        "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": settings.runtime_url,
        "AWS_ENDPOINT_URL_CLOUDWATCH": settings.api_url,
        "AWS_ENDPOINT_URL_CLOUDWATCH_LOGS": settings.api_url,
        "AWS_DEFAULT_REGION": settings.region,
        "AWS_ACCESS_KEY_ID": "greenshift",
        "AWS_SECRET_ACCESS_KEY": "greenshift",
    }
    first = (settings.access_keys or "").split(",")[0].strip()
    if first:
        key = first.partition(":")[0].strip()
        env["AWS_ACCESS_KEY_ID"] = key
        env["AWS_SECRET_ACCESS_KEY"] = f"<the secret of {key} in GREENSHIFT_ACCESS_KEYS>"
    return env
