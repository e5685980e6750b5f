"""OpenAI-compatible v1 surface through `openai.AsyncOpenAI(base_url=...)`.

Covers Azure's `/openai/v1` (no api-version; key or Entra token as bearer) and any server that
speaks the OpenAI chat-completions API. The deployment name goes in `model`.
"""

from __future__ import annotations

from typing import Any, Final

import httpx2
import openai

from compare.endpoints.http_errors import Call, translate
from compare.endpoints.openai_sdk import OpenAISDKClient

KIND: Final = "openai"


class OpenAIV1Client(OpenAISDKClient):
    """The shared client for one OpenAI-compatible base URL (implements `base.SharedClient`).

    `api_key` is a key, or an async callable returning a bearer token (Entra ID).
    """

    kind = KIND

    def __init__(self, endpoint: str, *, api_key: Any) -> None:
        if api_key is None:
            raise ValueError("api_key is required (a key or an async token provider)")
        super().__init__(endpoint)
        self._api_key = api_key

    def __repr__(self) -> str:
        return f"OpenAIV1Client({self.endpoint!r})"

    def _build(self, http_client: httpx2.AsyncClient) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(
            base_url=self.endpoint,
            api_key=self._api_key,
            max_retries=0,
            http_client=http_client,
        )

    async def model_info(self, deployment: str) -> dict[str, Any] | None:
        """The deployment's entry in `GET /models`, or None when the server lists none."""
        client = self._client()
        try:
            page = await client.models.list(timeout=httpx2.Timeout(30.0, connect=10.0))
        except openai.APIStatusError as e:
            if e.status_code in (404, 405):
                return None
            raise translate(e, Call(deployment, self.endpoint)) from e
        except Exception as e:
            raise translate(e, Call(deployment, self.endpoint)) from e
        for model in page.data:
            if model.id == deployment or model.id.lower() == deployment.lower():
                return model.model_dump()
        return None
