"""Inline a template's `<style>` CSS into `style=""` attributes once, when Jinja loads the template.

Every email then renders from already-inlined markup, so no HTML is parsed per message. Jinja syntax
is swapped for HTML comments before the HTML parser sees it (comments stay where they are even between
table rows, where bare text would be moved out of the table), and swapped back afterwards; if any
placeholder does not come back intact and in order, the template is reported as not inlinable and the
caller falls back to inlining each rendered email instead.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

import css_inline
from jinja2 import BaseLoader, Environment, TemplateNotFound

_JINJA = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.DOTALL)
_PLACEHOLDER = re.compile(r"<!--jinja:(\d+)-->|&lt;!--jinja:(\d+)--&gt;")
_STYLE = re.compile(r"<style[^>]*>(.*?)</style>", re.DOTALL | re.IGNORECASE)
_IN_STYLING = re.compile(r"""\b(?:class|style)\s*=\s*["'][^"'>]*<!--jinja:""", re.IGNORECASE)
_EXTENDS = re.compile(r"\{%-?\s*extends\s+[\"']([^\"']+)[\"']\s*-?%\}")


class NotInlinable(Exception):
    """Inlining would change a template's Jinja structure (a tag inside a style attribute, say)."""


def style_css(source: str) -> str:
    """The CSS of every `<style>` block in an HTML document or template."""
    return "\n".join(m.group(1) for m in _STYLE.finditer(_JINJA.sub("", source)))


def _protect(source: str, name: str) -> tuple[str, list[str]]:
    found: list[str] = []

    def swap(match: re.Match[str]) -> str:
        found.append(match.group(0))
        return f"<!--jinja:{len(found) - 1}-->"

    protected = _JINJA.sub(swap, source)
    if _IN_STYLING.search(protected):
        raise NotInlinable(
            f"template {name}: Jinja inside a class or style attribute, which CSS selectors cannot match"
        )
    return protected, found


def _restore(html: str, found: list[str], name: str) -> str:
    order = [int(a or b) for a, b in _PLACEHOLDER.findall(html)]
    if order != list(range(len(found))):
        raise NotInlinable(f"template {name}: inlining CSS moved or lost Jinja tags")
    return _PLACEHOLDER.sub(lambda m: found[int(m.group(1) or m.group(2))], html)


def inline_document(source: str, name: str = "<template>") -> str:
    """Inline a whole-document template; a `<style>` block keeps only the @-rules (media queries)."""
    protected, found = _protect(source, name)
    inliner = css_inline.CSSInliner(keep_at_rules=True, minify_css=True, load_remote_stylesheets=False)
    return _restore(inliner.inline(protected), found, name)


def inline_fragment(source: str, css: str, name: str = "<template>") -> str:
    """Inline a template that is only blocks of a layout, with the layout's CSS."""
    protected, found = _protect(source, name)
    inliner = css_inline.CSSInliner(minify_css=True, load_remote_stylesheets=False)
    return _restore(inliner.inline_fragment(protected, css), found, name)


def inline_rendered(html: str) -> str:
    """Inline one rendered email: the per-message fallback when templates cannot be inlined at load time."""
    return str(css_inline.CSSInliner(keep_at_rules=True, minify_css=True, load_remote_stylesheets=False).inline(html))


class InliningLoader(BaseLoader):
    """Wraps a loader: HTML templates come out with their CSS inlined; other templates pass through.

    A template that `{% extends %}` a layout is inlined with the layout's `<style>` CSS, so keep
    selectors to plain classes and elements: a fragment cannot see the layout's ancestors. `partials`
    names templates that are pieces of a layout without extending it (template → layout), inlined the same way.
    """

    def __init__(
        self,
        inner: BaseLoader,
        is_html: Callable[[str], bool] | None = None,
        partials: Mapping[str, str] | None = None,
    ) -> None:
        self.inner = inner
        self.is_html = is_html or (lambda name: name.endswith((".html", ".html.j2")))
        self.partials = dict(partials or {})

    def get_source(self, environment: Environment, template: str) -> tuple[str, str | None, Callable[[], bool] | None]:
        source, filename, uptodate = self.inner.get_source(environment, template)
        if not self.is_html(template):
            return source, filename, uptodate
        if "<html" in source.lower():
            return inline_document(source, template), filename, uptodate
        parent = _EXTENDS.search(source)
        layout_name = parent.group(1) if parent else self.partials.get(template)
        if not layout_name:
            return source, filename, uptodate
        try:
            layout = self.inner.get_source(environment, layout_name)[0]
        except TemplateNotFound:
            return source, filename, uptodate
        return inline_fragment(source, style_css(layout), template), filename, uptodate

    def list_templates(self) -> list[str]:
        return self.inner.list_templates()
