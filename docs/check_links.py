"""Check every link between the pages of a built HTML site: target file and anchor.

    python docs/check_links.py docs/_build/html

Links that leave the site (http:, https:, mailto:) are listed, not fetched: the
gate runs without the Internet. A relative link must name a file that exists in
the build, and a ``#fragment`` an ``id`` (or ``name``) on that page. Exit status
1, with one line per broken link, when any is broken.
"""

from __future__ import annotations

import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import Dict, List, Set, Tuple
from urllib.parse import unquote, urlsplit


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.ids: Set[str] = set()
        self.links: List[str] = []

    def handle_starttag(self, tag: str, attrs: List[Tuple[str, str | None]]) -> None:
        values = dict(attrs)
        for key in ("id", "name"):
            if values.get(key):
                self.ids.add(str(values[key]))
        for key in ("href", "src"):
            target = values.get(key)
            if target and not (tag == "link" and values.get("rel") == "canonical"):
                self.links.append(target)


def parse(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


def broken_links(site: Path) -> Tuple[List[str], int, Set[str]]:
    """(problems, internal links checked, external hosts linked to)."""
    pages: Dict[Path, _Page] = {p.resolve(): parse(p) for p in sorted(site.rglob("*.html"))}
    problems: List[str] = []
    external: Set[str] = set()
    checked = 0
    for path, page in pages.items():
        for link in page.links:
            parts = urlsplit(link)
            if parts.scheme or parts.netloc:
                if parts.scheme in ("http", "https"):
                    external.add(parts.netloc)
                elif parts.scheme not in ("mailto", "data"):
                    problems.append(f"{path.relative_to(site.resolve())}: unexpected link {link}")
                continue
            checked += 1
            target = (path.parent / unquote(parts.path)).resolve() if parts.path else path
            if target.is_dir():
                target = target / "index.html"
            where = f"{path.relative_to(site.resolve())}: {link}"
            if not target.exists():
                problems.append(f"{where}: no such file")
                continue
            if parts.fragment and target.suffix == ".html":
                ids = pages[target].ids if target in pages else parse(target).ids
                if unquote(parts.fragment) not in ids:
                    problems.append(f"{where}: no anchor #{parts.fragment}")
    return problems, checked, external


def main(argv: List[str]) -> int:
    if len(argv) != 1:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    site = Path(argv[0])
    if not (site / "index.html").exists():
        print(f"no built site at {site} (index.html missing)", file=sys.stderr)
        return 2
    problems, checked, external = broken_links(site)
    for problem in problems:
        print(problem)
    print(
        f"{checked} internal links checked, {len(problems)} broken; "
        f"external hosts (not fetched): {', '.join(sorted(external)) or 'none'}"
    )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
