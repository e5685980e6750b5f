"""The prompt model: `Prompt` (what is sent, with its reference and tags) and `PromptSet`."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, overload

from compare.errors import PromptSetError

FIELDS: Final = ("id", "prompt", "messages", "system", "vars", "reference", "tags")
ROLES: Final = ("system", "developer", "user", "assistant")
VAR_PREFIX: Final = "vars."


@dataclass(frozen=True)
class Prompt:
    """One prompt. `messages` is what is sent (templates already filled)."""

    id: str
    messages: list[dict[str, Any]]
    reference: str | None = None
    tags: tuple[str, ...] = ()
    vars: dict[str, Any] = field(default_factory=dict)

    def __hash__(self) -> int:
        return hash(self.id)

    @property
    def text(self) -> str:
        """The last user message as text (what a table or chart shows for this prompt)."""
        for message in reversed(self.messages):
            if message["role"] == "user":
                return _content_text(message["content"])
        return ""

    @property
    def system(self) -> str | None:
        for message in self.messages:
            if message["role"] in ("system", "developer"):
                return _content_text(message["content"])
        return None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "messages": [dict(m) for m in self.messages],
            "reference": self.reference,
            "tags": list(self.tags),
            "vars": dict(self.vars),
        }


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    # Content parts (multimodal form): keep the text parts.
    texts = (p.get("text") for p in content if isinstance(p, Mapping))
    return " ".join(t for t in texts if isinstance(t, str) and t)


class PromptSet(Sequence[Prompt]):
    """An ordered, id-unique collection of prompts. Index by position or by id."""

    def __init__(self, prompts: Iterable[Prompt], *, source: str | None = None) -> None:
        self._prompts: list[Prompt] = list(prompts)
        self.source = source
        self._by_id: dict[str, Prompt] = {}
        for prompt in self._prompts:
            if prompt.id in self._by_id:
                raise PromptSetError(f"duplicate id {prompt.id!r}", source=source, field="id")
            self._by_id[prompt.id] = prompt

    @overload
    def __getitem__(self, key: int) -> Prompt: ...
    @overload
    def __getitem__(self, key: slice) -> PromptSet: ...
    @overload
    def __getitem__(self, key: str) -> Prompt: ...

    def __getitem__(self, key: int | slice | str) -> Prompt | PromptSet:
        if isinstance(key, str):
            return self._by_id[key]
        if isinstance(key, slice):
            return PromptSet(self._prompts[key], source=self.source)
        return self._prompts[key]

    def __len__(self) -> int:
        return len(self._prompts)

    def __iter__(self) -> Iterator[Prompt]:
        return iter(self._prompts)

    def __contains__(self, item: object) -> bool:
        if isinstance(item, str):
            return item in self._by_id
        return item in self._prompts

    def __repr__(self) -> str:
        where = f", source={self.source!r}" if self.source else ""
        return f"PromptSet({len(self)} prompts{where})"

    @property
    def ids(self) -> list[str]:
        return [p.id for p in self._prompts]

    def filter(self, tags: str | Iterable[str]) -> PromptSet:
        """Prompts that carry any of `tags`."""
        wanted = {tags} if isinstance(tags, str) else set(tags)
        return PromptSet([p for p in self if wanted & set(p.tags)], source=self.source)

    def to_frame(self) -> Any:
        """A pandas DataFrame: id, text, system, reference, tags, n_messages."""
        import pandas as pd

        return pd.DataFrame(
            {
                "id": [p.id for p in self],
                "text": [p.text for p in self],
                "system": [p.system for p in self],
                "reference": [p.reference for p in self],
                "tags": [list(p.tags) for p in self],
                "n_messages": [len(p.messages) for p in self],
            }
        )

    def to_run_table(self) -> Any:
        """The run directory's prompts table (prompts.parquet): id, prompt (the last user
        turn), reference, tags, and the whole conversation as JSON (`messages`), so a saved
        run can be scored later."""
        import json

        import pandas as pd

        return pd.DataFrame(
            {
                "id": pd.Series([p.id for p in self], dtype="string"),
                "prompt": pd.Series([p.text for p in self], dtype="string"),
                "reference": pd.Series([p.reference for p in self], dtype="string"),
                "tags": [list(p.tags) for p in self],
                "messages": pd.Series([json.dumps(p.messages, ensure_ascii=False) for p in self],
                                      dtype="string"),
            }
        )


# -- where a row came from (for error messages) ----------------------------------------------


class Where:
    """Where a row came from, for error messages."""

    def __init__(self, source: str, line: int | None) -> None:
        self.source = source
        self.line = line

    def error(self, message: str, field: str | None = None) -> PromptSetError:
        text = f"field {field!r}: {message}" if field else message
        return PromptSetError(text, source=self.source, line=self.line, field=field)


def is_blank(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and value != value:  # NaN from pandas / CSV
        return True
    return isinstance(value, str) and not value.strip()
