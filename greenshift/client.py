"""A client of a running Greenshift, for the CLI: boto3 for the SageMaker and CloudWatch
operations, and the `Greenshift.*` extension operations over the same JSON 1.1 protocol (signed
with SigV4 when access keys are configured, exactly as boto3 signs)."""

from __future__ import annotations

import json
from typing import Any

import boto3
import httpx
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

from greenshift.settings import Settings


class GreenshiftApiError(Exception):
    """An error answer of the control API: its code and message, as the API sent them."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class GreenshiftClient:
    def __init__(self, settings: Settings, timeout: float = 30.0) -> None:
        self.settings = settings
        self.url = settings.api_url
        key, secret = _first_key(settings)
        self._credentials = Credentials(key, secret)
        self._http = httpx.Client(timeout=timeout)
        self._boto: dict[str, Any] = {}

    def boto(self, service: str) -> Any:
        """A boto3 client of this Greenshift (sagemaker, cloudwatch, sagemaker-runtime)."""
        if service not in self._boto:
            url = self.settings.runtime_url if service == "sagemaker-runtime" else self.url
            self._boto[service] = boto3.client(
                service,
                endpoint_url=url,
                region_name=self.settings.region,
                aws_access_key_id=self._credentials.access_key,
                aws_secret_access_key=self._credentials.secret_key,
                config=Config(retries={"max_attempts": 3, "mode": "standard"}),
            )
        return self._boto[service]

    def call(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        """Call `Greenshift.<operation>`; raises GreenshiftApiError on an error answer."""
        body = json.dumps(params).encode()
        headers = {
            "X-Amz-Target": f"Greenshift.{operation}",
            "Content-Type": "application/x-amz-json-1.1",
        }
        request = AWSRequest(method="POST", url=self.url + "/", data=body, headers=headers)
        SigV4Auth(self._credentials, "sagemaker", self.settings.region).add_auth(request)
        try:
            response = self._http.post(
                self.url + "/", content=body, headers=dict(request.headers.items())
            )
        except httpx.HTTPError as exc:
            raise GreenshiftApiError(
                "ConnectionError", f"cannot reach Greenshift at {self.url}: {exc}"
            ) from exc
        document: dict[str, Any] = response.json() if response.content else {}
        if response.status_code >= 400:
            code = str(document.get("__type", "Error")).rsplit("#", 1)[-1]
            raise GreenshiftApiError(code, document.get("message") or document.get("Message", ""))
        return document

    def close(self) -> None:
        self._http.close()


def _first_key(settings: Settings) -> tuple[str, str]:
    if settings.access_keys:
        first = settings.access_keys.split(",")[0]
        key, _, secret = first.partition(":")
        return key.strip(), secret.strip()
    return "greenshift", "greenshift"
