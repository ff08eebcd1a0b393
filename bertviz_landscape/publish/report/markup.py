"""Text from files, in the report's Markdown and HTML: shown as text, never run as markup.

A results directory is shared (a colleague's runs, a download), so every string the report takes
from a file (a run's task or init in metrics.json, report_notes.json's sentences, a refusal
message naming a file, a directory's name, a figure's caption) may hold HTML or Markdown.

Two layers, each enough for what reaches it:

- Where the writer puts a string from a file into the Markdown: `md_text` (plain text: Markdown's
  and HTML's special characters escaped, one line, so it neither formats, links, splits a table
  cell nor opens a tag), `md_code` (a code span) and `md_url` (a link target inside the
  results directory, percent-encoded: no scheme, so never ``javascript:``).
- `to_html`, the one Markdown → HTML conversion: raw HTML in the Markdown is text (Python-Markdown
  passes it through by default), no autolinks, and the page keeps only the links and images the
  writer made itself (`links`): any other ``<a>`` becomes plain text, any other ``<img>`` is
  dropped, and no element keeps an ``on*`` attribute. So a string that reached the Markdown
  unescaped (a claim's sentence quoting a name) still renders as text.
"""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as etree
from pathlib import Path
from urllib.parse import quote

import markdown
from markdown.extensions import Extension
from markdown.treeprocessors import Treeprocessor

_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]+")  # line breaks and other control characters
_ESCAPE = re.compile(r"[\\`*\[\]|#]|(?<!\w)_|_(?!\w)")  # `_` inside a word (train_loss) is no emphasis
_LIST_START = re.compile(r"^([-+]|\d+(?=[.)]))")  # what would start a list at the start of a line


def md_text(value) -> str:
    """`value` as plain text inside a line of Markdown: `& < >` as entities, Markdown's special
    characters (and `|`, a table's separator) backslash-escaped, control characters (line
    breaks) as one space, no leading list marker or indentation."""
    text = _CONTROL.sub(" ", str(value)).strip()
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = _ESCAPE.sub(lambda m: "\\" + m.group(0), text)
    return _LIST_START.sub(
        lambda m: m.group(0) + "\\" if m.group(0)[0].isdigit() else "\\" + m.group(0), text
    )


def md_code(value) -> str:
    """`value` as a code span (a path, a command), or as `md_text` when it cannot be one (a
    backtick, a `|` that would split a table cell, a control character)."""
    text = str(value)
    if not text or "`" in text or "|" in text or _CONTROL.search(text) or text != text.strip():
        return md_text(text)
    return f"`{text}`"


def md_url(path: str | os.PathLike, root: str | os.PathLike) -> str | None:
    """The link target of `path` relative to the report's directory `root`, percent-encoded
    (only letters, digits, ``/ - . _ ~`` stay as they are: no scheme, no space, no bracket);
    None when `path` does not lie inside `root` (the report links nothing outside it)."""
    root = Path(root).resolve()
    target = Path(path)
    try:
        rel = (target if target.is_absolute() else root / target).resolve().relative_to(root)
    except (ValueError, OSError):
        return None
    if not rel.parts:
        return None
    return quote(rel.as_posix(), safe="/-._~")


class _OnlyOwnLinks(Treeprocessor):
    """After every other step (placeholders unescaped): links and images the writer did not
    make become text; no `on*` attribute survives."""

    def __init__(self, md, links: frozenset[str]) -> None:
        super().__init__(md)
        self.links = links

    def run(self, root: etree.Element) -> None:
        for parent in list(root.iter()):
            for child in list(parent):
                if child.tag == "img" and child.get("src") not in self.links:
                    _drop(parent, child, child.get("alt") or "")
                elif child.tag == "a" and child.get("href") not in self.links:
                    child.tag = "span"
                    child.attrib.clear()
        for element in root.iter():
            for name in [n for n in element.attrib if n.lower().startswith("on")]:
                del element.attrib[name]


def _drop(parent: etree.Element, child: etree.Element, text: str) -> None:
    """Replace `child` by `text` (and keep what followed it)."""
    after = text + (child.tail or "")
    index = list(parent).index(child)
    if index == 0:
        parent.text = (parent.text or "") + after
    else:
        prev = parent[index - 1]
        prev.tail = (prev.tail or "") + after
    parent.remove(child)


class _SafeMarkdown(Extension):
    def __init__(self, links: frozenset[str]) -> None:
        super().__init__()
        self.links = links

    def extendMarkdown(self, md) -> None:  # noqa: N802  (Python-Markdown's name)
        md.preprocessors.deregister("html_block")  # raw HTML blocks: text
        for name in ("html", "autolink", "automail"):  # inline raw HTML, <http://…>, <mailto:…>: text
            md.inlinePatterns.deregister(name)
        md.treeprocessors.register(_OnlyOwnLinks(md, self.links), "only_own_links", -10)


# The report's own folds: a line exactly `<details markdown="1"><summary>TEXT</summary>` (TEXT without
# `<`, `>`: a string from a file reaches the Markdown through `md_text`, which makes `<` an entity and
# never starts a line) opens one, a line `</details>` closes it. Nothing else of raw HTML is markup.
DETAILS_OPEN = '<details markdown="1"><summary>{}</summary>'
DETAILS_CLOSE = "</details>"
_FOLD = re.compile(r'^(?:<details markdown="1"><summary>([^<>\n]*)</summary>|(</details>))[ \t]*$', re.M)


def _convert(text: str, links: frozenset[str]) -> str:
    return markdown.markdown(text, extensions=["tables", _SafeMarkdown(links)], output_format="html")


def to_html(text: str, links=()) -> str:
    """The HTML body of the Markdown `text` (Python-Markdown with its `tables` extension), with
    raw HTML shown as text and only the links and image sources in `links` kept. The report's own
    folds (`DETAILS_OPEN` / `DETAILS_CLOSE` lines) become ``<details>`` elements, built here, not
    parsed from the text: each part between them is converted on its own; an unmatched close is
    text, an unclosed fold is closed at the end."""
    links = frozenset(links)
    out, depth, pos = [], 0, 0
    for m in _FOLD.finditer(text):
        if m.group(2) and depth == 0:
            continue  # a close without an open: left in the text
        out.append(_convert(text[pos : m.start()], links))
        pos = m.end()
        if m.group(2):
            out.append("</details>")
            depth -= 1
        else:
            summary = _convert(m.group(1), links)
            summary = re.sub(r"^<p>(.*)</p>$", r"\1", summary.strip(), flags=re.S)
            out.append(f"<details><summary>{summary}</summary>")
            depth += 1
    out.append(_convert(text[pos:], links))
    out.append("</details>" * depth)
    return "\n".join(part for part in out if part)
