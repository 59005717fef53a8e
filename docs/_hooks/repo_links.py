"""MkDocs hook: links from a page to a file of the repository outside ``docs/``.

The pages link to the repository's own files (``../results/README.md``,
``../benchmarks/RESULTS.md``) so that they work where the Markdown is read in the repository.
Those files are not part of the site, so MkDocs cannot check them and the built pages could not
follow them. This hook checks each such target exists (a missing one is a warning, which fails
``mkdocs build --strict``), then points the link at ``repo_url`` when mkdocs.yml sets one, and
otherwise shows the path as text.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

log = logging.getLogger("mkdocs.plugins.repo_links")  # under "mkdocs": counted by --strict

# [text](../path#anchor): a relative link that leaves docs/ (a page's own links stay MkDocs')
LINK = re.compile(r"\[([^\]]+)\]\((\.\./[^)\s#]+)(#[^)\s]*)?\)")


def on_page_markdown(markdown: str, page, config, files) -> str:
    docs = Path(config.docs_dir).resolve()
    root = Path(config.config_file_path).resolve().parent
    here = (docs / page.file.src_uri).parent

    def repository_link(match: re.Match) -> str:
        text, target, anchor = match.group(1), match.group(2), match.group(3) or ""
        path = (here / target).resolve()
        if docs in path.parents:
            return match.group(0)
        if root not in path.parents or not path.exists():
            log.warning(f"Doc file '{page.file.src_uri}' links to '{target}', which is not a file of the repository")
            return match.group(0)
        relative = path.relative_to(root).as_posix()
        if config.repo_url:
            return f"[{text}]({config.repo_url.rstrip('/')}/blob/main/{relative}{anchor})"
        return text if relative.startswith(text.strip("`")) else f"{text} (`{relative}`)"

    return LINK.sub(repository_link, markdown)
