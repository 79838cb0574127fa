"""Build eval/realdocs/files/sqlite-whentouse.pptx from SQLite's "Appropriate Uses For SQLite"
page (public domain; Debian sqlite3-doc 3.40.1-2+deb12u2, /usr/share/doc/sqlite3/whentouse.html).

No freely licensed real PowerPoint file was found in Debian or PyPI packages, so the deck is made
the way a person turns a web page into slides: one section slide per <h2>, one slide per bold
list item (its title) with the item's sentences as bullets, verbatim, and the checklist as one
slide of bullets.  Layouts are python-pptx's default template ("Section Header", "Title and
Content"), so titles and lists sit in real title and body placeholders.

    apt-get download sqlite3-doc && dpkg-deb -x sqlite3-doc_*.deb root
    python eval/realdocs/make_pptx.py root/usr/share/doc/sqlite3/whentouse.html eval/realdocs/files/sqlite-whentouse.pptx
"""
from __future__ import annotations

import re
import sys

from bs4 import BeautifulSoup
from pptx import Presentation

SECTION, CONTENT = 2, 1  # python-pptx default template: "Section Header", "Title and Content"
MAX_BULLETS = 6


def _sentences(text: str) -> list[str]:
    text = re.sub(r"\s+", " ", text).strip()
    return [s for s in re.split(r"(?<=[.!?])\s+(?=[A-Z])", text) if s]


def _slide(deck, title: str, bullets: list[str]) -> None:
    for start in range(0, len(bullets), MAX_BULLETS):
        slide = deck.slides.add_slide(deck.slide_layouts[CONTENT])
        slide.shapes.title.text = title if start == 0 else f"{title} (continued)"
        body = slide.placeholders[1].text_frame
        for i, bullet in enumerate(bullets[start : start + MAX_BULLETS]):
            paragraph = body.paragraphs[0] if i == 0 else body.add_paragraph()
            paragraph.text = bullet


def main(source: str, target: str) -> None:
    soup = BeautifulSoup(open(source, encoding="utf-8").read(), "html.parser")
    deck = Presentation()
    deck.core_properties.title = soup.h1.get_text(" ", strip=True)
    first = deck.slides.add_slide(deck.slide_layouts[0])
    first.shapes.title.text = deck.core_properties.title
    first.placeholders[1].text = "From the SQLite documentation (public domain)"
    for heading in soup.find_all("h2"):
        section = deck.slides.add_slide(deck.slide_layouts[SECTION])
        section.shapes.title.text = heading.get_text(" ", strip=True)
        items = heading.find_next(["ul", "ol"]).find_all("li", recursive=False)
        if heading.find_next(["ul", "ol"]).name == "ol":
            _slide(deck, heading.get_text(" ", strip=True), [re.sub(r"\s+", " ", li.find("b").get_text(" ", strip=True)) for li in items])
            continue
        for li in items:
            title = li.find("b").get_text(" ", strip=True)
            text = li.get_text(" ", strip=True)[len(title):]
            _slide(deck, title, _sentences(text))
    deck.save(target)


if __name__ == "__main__":
    main(*sys.argv[1:3])
