"""Jinja filters that write an answer safely into each kind of file (cookiecutter.json ``_extensions``).

The pre-generation hook has already refused control characters, line breaks and ``\"\"\"``, so these
only have to escape what remains legal but special in each format.
"""

from __future__ import annotations

import json
import re
import unicodedata

from cookiecutter.utils import simple_filter

# Longest docstring line before ruff's E501 (110), in terminal columns; wide characters count 2.
DOCSTRING_WIDTH = 88
# Characters that can start Markdown inline markup (CommonMark and GitHub's extensions).
MARKDOWN_INLINE = re.compile(r"([\\`*_\[\]<>#~|&$!])")
# A line starting like this would become a list, a quote, a heading or a rule.
MARKDOWN_BLOCK_START = re.compile(r"^(\d{1,9})([.)])|^([-+=])")


@simple_filter
def quoted(value: str) -> str:
    """A double-quoted string that TOML, YAML and Python read back as ``value``.

    Jinja's ``tojson`` escapes non-ASCII, which TOML rejects for emoji (surrogate pairs) and Python reads
    as lone surrogates; JSON that keeps non-ASCII as-is is valid in all three.
    """
    return json.dumps(value, ensure_ascii=False)


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(char) in "WF" else 1 for char in text)


@simple_filter
def docstring_body(value: str) -> str:
    """``value`` wrapped to the line length, for the body of a docstring (raw when it has backslashes)."""
    lines: list[str] = []
    for word in value.split(" "):
        if lines and lines[-1] and _width(f"{lines[-1]} {word}") <= DOCSTRING_WIDTH:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    return "\n".join(line.rstrip() for line in lines if line.strip())


@simple_filter
def markdown(value: str) -> str:
    """``value`` as Markdown text that renders literally (no emphasis, links, HTML or list markers)."""
    escaped = MARKDOWN_INLINE.sub(r"\\\1", value)
    return MARKDOWN_BLOCK_START.sub(lambda m: f"{m[1]}\\{m[2]}" if m[1] else f"\\{m[3]}", escaped)
