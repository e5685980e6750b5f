"""Prompt sets: from a Python list, a DataFrame, a CSV or a JSONL file.

model.py (Prompt, PromptSet) · rows.py (one row → one Prompt) · template.py ({name} filling) ·
readers.py (the sources and `load_prompts`).

Each prompt has an `id`, the chat `messages` to send (a single `prompt` text becomes one user
message; `system` is prepended), an optional `reference` answer and `tags`, and template `vars`.

Fields (dict keys, JSONL keys, CSV/DataFrame columns):

- ``id``         optional; default ``p-`` + 8 hex digits of a hash of the messages, so an id
                 follows its text when rows are reordered or added (a checkpoint stays valid);
                 16 hex digits for the rare different prompts whose 8 digits collide.
- ``prompt``     the user text, or
- ``messages``   the full conversation: a list of ``{"role", "content"}`` (JSON text in CSV).
- ``system``     optional system message.
- ``vars``       optional mapping; when present, ``{name}`` in prompt/system/messages is filled
                 from it (``{{`` and ``}}`` for literal braces). Only plain names: a conversion or
                 format spec (``{x!r}``, ``{x:>10}``) is an error, never evaluated. Without vars,
                 text is sent as is.
                 In CSV and DataFrames also as ``vars.<name>`` columns.
- ``reference``  optional reference answer.
- ``tags``       optional list of strings (in CSV: ``a;b`` or ``a,b`` or a JSON list).

Any bad row raises one `PromptSetError` naming the file (or list/DataFrame), the line or row and
the field.
"""

from compare.prompts.model import FIELDS, Prompt, PromptSet
from compare.prompts.readers import demo_prompts, load_prompts

__all__ = ["FIELDS", "Prompt", "PromptSet", "demo_prompts", "load_prompts"]
