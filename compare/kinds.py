"""The kinds of deployment: how each is called, and the environment variables each reads.

Online kinds send one request per HTTP call: azure-inference (Azure AI model inference, the
azure-ai-inference SDK), azure-openai (per-deployment URLs, `openai.AsyncAzureOpenAI`), openai
(an OpenAI-compatible `/v1` base URL, `openai.AsyncOpenAI`). Batch kinds send a deployment's
requests as JSONL files through the batch API (files + batches) of a global or data-zone batch
deployment: azure-openai-batch (the resource URL and an api-version) and openai-batch (its
`/openai/v1` URL), each through the openai SDK client of its online twin (`CLIENT_KIND`).
"""

from __future__ import annotations

from typing import Final

ONLINE_KINDS: Final = ("azure-inference", "azure-openai", "openai")
BATCH_KINDS: Final = ("azure-openai-batch", "openai-batch")
KINDS: Final = (*ONLINE_KINDS, *BATCH_KINDS)

ENDPOINT_ENV: Final[dict[str, str]] = {
    "azure-inference": "AZURE_AI_CHAT_ENDPOINT",
    "azure-openai": "AZURE_OPENAI_ENDPOINT",
    "openai": "OPENAI_BASE_URL",
}
KEY_ENV: Final[dict[str, str]] = {
    "azure-inference": "AZURE_AI_CHAT_KEY",
    "azure-openai": "AZURE_OPENAI_API_KEY",
    "openai": "OPENAI_API_KEY",
}
API_VERSION_ENV: Final[dict[str, str]] = {"azure-openai": "OPENAI_API_VERSION"}
# What each SDK sends when not told otherwise: azure-ai-inference 1.0.0b9's default, and the GA
# Azure OpenAI data-plane version (the 2024-10-21 inference spec, tests/specs/).
DEFAULT_API_VERSION: Final[dict[str, str]] = {
    "azure-inference": "2024-05-01-preview",
    "azure-openai": "2024-10-21",
}
# The online kind whose client (and SDK) each batch kind uses: its files and batches resources.
CLIENT_KIND: Final[dict[str, str]] = {"azure-openai-batch": "azure-openai",
                                      "openai-batch": "openai"}
# A batch kind reads the variables and api version of its client's kind.
for _table in (ENDPOINT_ENV, KEY_ENV, API_VERSION_ENV, DEFAULT_API_VERSION):
    _table.update({b: _table[o] for b, o in CLIENT_KIND.items() if o in _table})
