"""Azure OpenAI, per-deployment URLs, through `openai.AsyncAzureOpenAI`.

One client per resource endpoint (`azure_endpoint`); the deployment goes in `model`, which the
SDK turns into `/openai/deployments/{model}/chat/completions?api-version=...`. Auth: `api-key`
header, or an Entra ID bearer token from an async token provider (azure-identity).
"""

from __future__ import annotations

from typing import Any, Final

import httpx2
import openai

from compare.deployments import DEFAULT_API_VERSION
from compare.endpoints.http_errors import Call, translate
from compare.endpoints.openai_sdk import OpenAISDKClient

KIND: Final = "azure-openai"
ENTRA_SCOPE: Final = "https://cognitiveservices.azure.com/.default"


class AzureOpenAIClient(OpenAISDKClient):
    """The shared client for one Azure OpenAI resource (implements `base.SharedClient`).

    Pass `api_key`, or `token_provider` (an async callable returning a bearer token, e.g.
    `azure.identity.aio.get_bearer_token_provider(credential, ENTRA_SCOPE)`).
    """

    kind = KIND

    def __init__(
        self,
        endpoint: str,
        *,
        api_key: str | None = None,
        token_provider: Any = None,
        api_version: str | None = None,
    ) -> None:
        if (api_key is None) == (token_provider is None):
            raise ValueError("pass exactly one of api_key or token_provider")
        super().__init__(endpoint)
        self.api_version = api_version or DEFAULT_API_VERSION[KIND]
        self._api_key = api_key
        self._token_provider = token_provider

    def __repr__(self) -> str:
        auth = "entra" if self._token_provider is not None else "key"
        return f"AzureOpenAIClient({self.endpoint!r}, auth={auth!r})"

    def _build(self, http_client: httpx2.AsyncClient) -> openai.AsyncOpenAI:
        return openai.AsyncAzureOpenAI(
            azure_endpoint=self.endpoint,
            api_key=self._api_key,
            azure_ad_token_provider=self._token_provider,
            api_version=self.api_version,
            max_retries=0,
            http_client=http_client,
        )

    async def model_info(self, deployment: str) -> dict[str, Any] | None:
        """`GET /openai/deployments/{name}/info` where the endpoint offers it (the local one
        does; Azure OpenAI answers 404, then None)."""
        client = self._client()
        try:
            info = await client.get(
                f"/deployments/{deployment}/info",
                cast_to=object,
                options={"timeout": httpx2.Timeout(30.0, connect=10.0)},
            )
        except openai.APIStatusError as e:
            if e.status_code in (404, 405):
                return None
            raise translate(e, Call(deployment, self.endpoint)) from e
        except Exception as e:
            raise translate(e, Call(deployment, self.endpoint)) from e
        return dict(info) if isinstance(info, dict) else None
