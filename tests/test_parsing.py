"""Structure-aware parsing: typed blocks, canonical text, source spans, pages (issue 10)."""
from __future__ import annotations

import io

import pytest

from rag.chunking import make_passages, split_paragraphs
from rag.errors import UnsupportedDocument
from rag.ingest import document_from_bytes
from rag.parsing import parse_bytes
from support import column as _column
from support import make_pdf as _pdf

MAN_PAGE = """\
RSYNC(1)                     User Commands                    RSYNC(1)

NAME
       rsync - a fast, versatile, remote (and local) file-copying tool

DESCRIPTION
       Rsync  is  a  fast and extraordinarily versatile file copying tool.  It
       can copy locally, to/from another host over any remote shell.

OPTIONS
       -z, --compress
              With this option, rsync compresses the file data as it is sent
              to the destination machine, which reduces the amount of data
              being transmitted.

       --bwlimit=RATE
              This option allows you to specify the maximum transfer rate for
              the data sent over the socket, specified in units per second.

              Rsync writes data over the socket in blocks, and this option
              both limits the size of the blocks.

rsync 3.2.7                      2022-10-20                     RSYNC(1)
"""


def _check_invariants(document) -> None:
    for block in document.blocks:
        assert 0 <= block.start < block.end <= len(document.text)
        assert document.text[block.start : block.end].strip() == document.text[block.start : block.end]
    for paragraph in split_paragraphs(document):
        assert document.text[paragraph.doc_start : paragraph.doc_end] == paragraph.text
        for passage in make_passages([paragraph], max_words=40):
            assert paragraph.text[passage.paragraph_start : passage.paragraph_start + len(passage.text)] == passage.text


def test_man_page_sections_options_and_title():
    document = document_from_bytes("rsync.txt", MAN_PAGE.encode())
    _check_invariants(document)
    assert document.title == "rsync - a fast, versatile, remote (and local) file-copying tool"
    assert "RSYNC(1)" not in document.text  # running header and footer dropped
    paragraphs = split_paragraphs(document)
    by_start = {p.text.split("\n")[0]: p for p in paragraphs}
    # The wrap is joined and justified double spaces collapsed.
    description = next(p for p in paragraphs if p.section == "DESCRIPTION")
    assert description.text == "DESCRIPTION\n\nRsync is a fast and extraordinarily versatile file copying tool. It can copy locally, to/from another host over any remote shell."
    # An option term stays with its description; later paragraphs carry it as a section.
    compress = by_start["OPTIONS"]  # the section's heading leads its first paragraph
    assert compress.text.startswith("OPTIONS\n\n-z, --compress\n")
    assert compress.section == "OPTIONS" and "rsync compresses the file data" in compress.text
    bwlimit = by_start["--bwlimit=RATE"]
    assert "maximum transfer rate for the data sent over the socket" in bwlimit.text
    follow = next(p for p in paragraphs if p.text.startswith("Rsync writes data"))
    assert follow.section == "OPTIONS > --bwlimit=RATE"
    # Each block's source span is the original text it came from.
    for block in document.blocks:
        original = MAN_PAGE[block.source_start : block.source_end]
        assert " ".join(original.split()) .replace(" ", "") == document.text[block.start : block.end].replace("\n", "").replace(" ", "")


def test_hard_wrapped_text_joins_lines_and_one_line_paragraphs_stay():
    wrapped = "A first paragraph that is wrapped at a narrow width so that its sentence\ncontinues on this line, and the answer is the\nword zebra.\n\nSecond paragraph.\n"
    document = document_from_bytes("notes.txt", wrapped.encode())
    assert document.text.startswith("A first paragraph that is wrapped at a narrow width so that its sentence continues on this line, and the answer is the word zebra.")
    long_lines = ("word " * 40 + "one.\n") + ("other " * 40 + "two.\n")
    document = document_from_bytes("lines.txt", long_lines.encode())
    assert len(split_paragraphs(document)) == 2


def test_markdown_markup_leaves_the_canonical_text():
    source = (
        "# Project\n\n[![Build](https://ci/badge.svg)](https://ci) ![PyPI](https://pypi/badge.svg)\n\n"
        "<!-- a comment -->\nUse the `log_locals` argument, see [the docs](https://docs) for *details*.\n\n"
        "Install it like this:\n\n```bash\npip install project\n```\n\n"
        "| Option | Default |\n|---|---|\n| `--level` | 2<sup>31</sup>-1 |\n\n- first item\n- second item\n"
    )
    document = document_from_bytes("README.md", source.encode())
    _check_invariants(document)
    text = document.text
    assert document.title == "Project"
    assert "badge" not in text and "https://" not in text and "comment" not in text and "`" not in text and "*" not in text
    assert "Use the log_locals argument, see the docs for details." in text
    assert "--level | 2^31-1" in text
    kinds = [b.kind for b in document.blocks]
    assert kinds.count("list_item") == 2 and "code" in kinds and "table" in kinds
    paragraphs = split_paragraphs(document)
    # The sentence that introduces a code block stays with it.
    assert any("Install it like this:\n\npip install project" in p.text for p in paragraphs)
    for block in document.blocks:
        assert block.source_start is not None and source[block.source_start : block.source_end].strip()


def test_html_main_content_title_tables_and_superscripts():
    html = (
        "<html><head><title>Limits - Manual</title><style>p{}</style></head><body>"
        "<nav><a href='/'>Home</a> Press ← or → to navigate</nav><div class='sidebar'>Theme: Light Dark</div>"
        "<main><h1>Limits <a class='headerlink' href='#l'>¶</a></h1><p>The largest value is 2<sup>31</sup>-1 and"
        " water is H<sub>2</sub>O.</p><table><tr><th>Name</th><th>Value</th></tr><tr><td>max</td><td>10</td></tr></table>"
        "<ul><li>one</li><li>two</li></ul></main><footer>Copyright</footer></body></html>"
    )
    document = document_from_bytes("limits.html", html.encode())
    _check_invariants(document)
    assert document.title == "Limits - Manual"
    text = document.text
    assert "navigate" not in text and "Theme" not in text and "Copyright" not in text and "¶" not in text
    assert "The largest value is 2^31-1 and water is H2O." in text
    table = next(b for b in document.blocks if b.kind == "table")
    assert table.rows == (("Name", "Value"), ("max", "10"))
    paragraph = next(b for b in document.blocks if b.kind == "paragraph")
    assert html[paragraph.source_start : paragraph.source_end].startswith("<p>The largest value")
    assert html[paragraph.source_start : paragraph.source_end].endswith("</p>")


def test_pdf_two_columns_running_heads_hyphenation_and_pages():
    header = [(250, 760, 9, "Journal of Tests", False)]
    page1 = header + [(150, 700, 18, "A Study of Columns", False)] + [(300, 40, 9, "1", False)]
    page1 += _column(72, 640, ["The left column starts here and it", "talks about the first topic in", "detail, with enough words for a", "body paragraph of some length", "until the end of it."])
    page1 += [(72, 570, 10, "Methods", True)]
    page1 += _column(72, 555, ["We measured the infor-", "mation flow with care and the", "result was clear."])
    page1 += _column(330, 640, ["The right column is read after the", "left one, never interleaved with", "it line by line at all."])
    page1 += _column(330, 590, ["Our second finding was forty two", "units"])
    page2 = header + [(300, 40, 9, "2", False)] + _column(72, 700, ["exactly, which ends the sentence.", "A new paragraph on page two."])
    data = _pdf([page1, page2], title="")
    document = document_from_bytes("paper.pdf", data)
    _check_invariants(document)
    text = document.text
    assert document.title == "A Study of Columns"
    assert "Journal of Tests" not in text  # running head on every page
    left = text.index("The left column starts here")
    right = text.index("The right column is read after the left one, never interleaved with it line by line at all.")
    methods = text.index("Methods")
    assert left < methods < right
    # Hyphenation undone; the paragraph continues across the page break.
    assert "We measured the information flow with care and the result was clear." in text
    assert "Our second finding was forty two units exactly, which ends the sentence." in text
    paragraphs = split_paragraphs(document)
    crossing = next(p for p in paragraphs if "forty two units exactly" in p.text)
    assert crossing.pages == [1, 2] and crossing.section == "Methods"
    assert {box[0] for box in crossing.bboxes} == {1.0, 2.0}
    assert all(len(box) == 5 for box in crossing.bboxes)
    heading = next(b for b in document.blocks if b.kind == "heading" and document.text[b.start : b.end] == "Methods")
    assert heading.pages == (1,)


def test_pdf_bullets_and_sentence_pieces_in_large_or_bold_type_are_not_headings():
    page = [(150, 720, 18, "Release Notes", False)]
    page += _column(72, 700, ["These notes list what changed in this release of the class, with the",
                              "options that are new, the ones that went away and the fixes to the guide."])
    page += [(72, 660, 12, "4.1 Authors Guide", True)]
    page += _column(72, 645, ["The guide was rewritten for this release and it now", "covers the new class options in detail."])
    page += [(72, 615, 12, "\u00b7 There have been many other bug fixes", True)]  # the test PDFs are latin-1: a middle-dot bullet
    page += [(72, 595, 14, "pose, Method, Results, and Conclusions. This can", False)]
    page += _column(72, 575, ["Every section keeps its own numbering as before."])
    document = document_from_bytes("notes.pdf", _pdf([page], title=""))
    _check_invariants(document)
    headings = [document.text[b.start : b.end] for b in document.blocks if b.kind == "heading"]
    assert "4.1 Authors Guide" in headings
    assert not any(h.startswith(("\u00b7", "pose")) for h in headings)
    sections = {p.section for p in split_paragraphs(document)}
    assert all("\u00b7" not in s and "pose," not in s for s in sections)
    assert "There have been many other bug fixes" in document.text


def test_pdf_footnote_at_a_page_foot_follows_the_paragraph_it_interrupts():
    page1 = [(150, 720, 18, "Field Notes", False), (300, 30, 9, "1", False)]
    page1 += _column(72, 690, ["The survey started in the northern valley where the", "team counted the nesting birds along the river and",
                               "then moved on to the eastern ridge, where the weather"])
    page1 += [(72, 70, 7, "1 The counts were made at dawn.", False)]
    page2 = [(300, 30, 9, "2", False)] + _column(72, 720, ["turned before the work was done, so the last counts wait.",
                                                         "A second paragraph starts on the new page here."])
    document = document_from_bytes("notes.pdf", _pdf([page1, page2], title=""))
    _check_invariants(document)
    text = document.text
    assert "where the weather turned before the work was done, so the last counts wait." in text
    note = text.index("The counts were made at dawn.")
    assert text.index("so the last counts wait.") < note
    paragraph = next(p for p in split_paragraphs(document) if "weather turned" in p.text)
    assert "dawn" not in paragraph.text.split("wait.")[0] and paragraph.pages == [1, 2]


def test_pdf_three_column_reference_card_reads_each_column_row_by_row():
    """A reference card: three columns of "command | what it does" rows on one page.  Each column
    is read on its own (one gutter read the first two as one, rows interleaved), and each row
    keeps its command with its description."""
    page = [(250, 760, 14, "Shell Reference Card", False)]
    for x, tool in [(20, "cat"), (220, "apt"), (420, "git")]:
        page.append((x, 730, 9, f"{tool.upper()} Commands", True))
        for r in range(12):
            page.append((x, 712 - 11 * r, 7, f"{tool} op{r}", False))
            page.append((x + 50, 712 - 11 * r, 7, f"Runs the {tool} step number {r}.", False))
    document = document_from_bytes("card.pdf", _pdf([page], title=""))
    _check_invariants(document)
    text = document.text
    for tool in ("cat", "apt", "git"):
        for r in range(12):
            assert f"{tool} op{r} Runs the {tool} step number {r}." in text
    assert text.index("Runs the cat step number 11.") < text.index("apt op0") < text.index("Runs the apt step number 11.") < text.index("git op0")


def test_pdf_examples_in_typewriter_type_are_code_blocks_apart_from_the_prose_around_them():
    """A manual's option entry left open at a page's foot, an example (with small line numbers in
    the margin) at the top of the next page, then prose: the entry must not run into the example,
    the example keeps its lines and indentation without its line numbers, and the paragraph after
    it starts with its own first word (fancyvrb's manual: "... an existing one First verbatim
    line." and "\\end{Verbatim} 4 The appearance of ...")."""
    page1 = [(150, 720, 18, "Verbatim Options", False)]
    page1 += _column(72, 690, ["formatcom (command) : command to execute before printing the", "verbatim text (Default: empty).",
                               "formatcom* (command) : add definition to an existing one"])
    page2 = []
    for i, (indent, code) in enumerate([(0, "\\\\begin{Verbatim}[formatcom=red]"), (2, "First verbatim line."), (2, "Second verbatim line."),
                                        (0, "\\\\end{Verbatim}")]):
        page2.append((60, 720 - 12 * i, 6, str(i + 1), False))
        page2.append((72 + 6 * indent, 720 - 12 * i, 10, code, "mono"))
    page2 += _column(72, 660, ["The appearance of verbatim environments can be changed in many", "ways; here we list the keys that can be set, and the",
                               "default for each key."])
    page2 += [(72, 610, 10, "To produce a wide table use the", False), (72, 598, 10, "table*", "mono"),
              (72, 586, 10, "environment instead of the narrow one.", False)]
    document = document_from_bytes("manual.pdf", _pdf([page1, page2], title=""))
    _check_invariants(document)
    text = document.text
    assert "add definition to an existing one\n\n" in text  # the entry ends where its page ends
    code = next(b for b in document.blocks if b.kind == "code")
    assert text[code.start:code.end] == "\\begin{Verbatim}[formatcom=red]\n  First verbatim line.\n  Second verbatim line.\n\\end{Verbatim}"
    assert code.pages == (2,)
    after = next(b for b in document.blocks if text[b.start:b.end].startswith("The appearance"))
    assert after.kind == "paragraph" and text[after.end - 1] == "."
    # A typewriter word alone on a wrapped line is an inline term, not an example.
    assert "To produce a wide table use the table* environment instead of the narrow one." in text


def test_pdf_one_line_example_stays_apart_and_card_entries_read_command_then_description():
    """A one-line example introduced by a colon is its own block, not glued to the sentence after
    it (mnras guide: "\\documentclass{mnras} Then compile LaTeX ...").  A reference card's entry
    whose two-line description is centred on its one-line command reads command first
    (the Debian card read "Install newest versions of all apt upgrade packages currently installed.")."""
    page = _column(72, 720, ["To use the package, specify it as the class at the start of a file:"])
    page += [(72, 708, 10, "\\\\documentclass{mnras}", "mono")]
    page += _column(72, 696, ["Then compile the file in the usual way, with any engine you like."])
    page += [(250, 640, 12, "APT", True)]
    for top, command, description in [(620, "apt upgrade", ["Install newest versions of all", "packages currently installed."]),
                                      (596, "apt full-upgrade", ["Like apt upgrade, but with", "advanced conflict resolution."])]:
        page.append((72, top - 6, 9, command, "mono"))
        page += [(160, top - 11 * i, 9, line, False) for i, line in enumerate(description)]
    document = document_from_bytes("card.pdf", _pdf([page], title=""))
    _check_invariants(document)
    paragraphs = [document.text[b.start:b.end] for b in document.blocks if b.kind != "heading"]
    assert "\\documentclass{mnras}" in paragraphs
    assert "Then compile the file in the usual way, with any engine you like." in paragraphs
    assert "apt upgrade Install newest versions of all packages currently installed." in paragraphs
    assert "apt full-upgrade Like apt upgrade, but with advanced conflict resolution." in paragraphs


def test_pdf_lines_staggered_across_columns_keep_their_words():
    """Cells centred on each other at small vertical offsets across a page (a reference card)
    chained pdfplumber's line grouping into one line whose letters interleaved: "I n t e r f a c e
    c o n fi g u r a tion".  Each column's words must come out whole."""
    page = []
    for c, x in enumerate((20, 135, 250, 365, 480)):
        for r in range(14):
            page.append((x, 700 - 2.2 * c - 11 * r, 8, f"Interface setup {c}{r}", False))
    document = document_from_bytes("card.pdf", _pdf([page], title=""))
    _check_invariants(document)
    for c in range(5):
        for r in range(14):
            assert f"Interface setup {c}{r}" in document.text
    assert "I n t e r" not in document.text


def test_pdf_line_end_hyphens_keep_real_compounds():
    from rag.parsing.pdf import _join

    vocabulary = {"onecolumn", "one-column", "one", "column", "information", "flow", "state-of-the-art"}
    assert _join(["the one-", "column layout"], vocabulary) == "the one-column layout"  # hyphenated elsewhere too
    assert _join(["the infor-", "mation flow"], vocabulary) == "the information flow"
    assert _join(["a two-", "column guide"], {"two", "column"}) == "a two-column guide"  # both halves are words
    assert _join(["a para-", "graph"], {"paragraph"}) == "a paragraph"


def test_scanned_pdf_says_it_has_no_text_layer():
    with pytest.raises(UnsupportedDocument, match="no text layer"):
        parse_bytes("scan.pdf", _pdf([[], []]))


def test_docx_styles_lists_tables_and_title():
    import docx

    word = docx.Document()
    word.core_properties.title = "Operations Manual"
    word.add_heading("Installation", level=1)
    word.add_paragraph("Run the installer and follow the prompts on the screen.")
    word.add_paragraph("first step", style="List Bullet")
    word.add_paragraph("second step", style="List Bullet")
    table = word.add_table(rows=2, cols=2)
    table.cell(0, 0).text, table.cell(0, 1).text = "Port", "Default"
    table.cell(1, 0).text, table.cell(1, 1).text = "http", "8080"
    buffer = io.BytesIO()
    word.save(buffer)
    document = document_from_bytes("manual.docx", buffer.getvalue())
    _check_invariants(document)
    assert document.title == "Operations Manual" and document.format == "docx"
    kinds = [b.kind for b in document.blocks]
    assert kinds[0] == "heading" and kinds.count("list_item") == 2 and "table" in kinds
    assert "http | 8080" in document.text
    assert all(p.section == "Installation" for p in split_paragraphs(document))


def test_pptx_slides_are_sections_with_slide_numbers():
    from pptx import Presentation

    deck = Presentation()
    slide = deck.slides.add_slide(deck.slide_layouts[1])
    slide.shapes.title.text = "Quarterly results"
    slide.placeholders[1].text_frame.text = "Revenue grew by twelve percent."
    buffer = io.BytesIO()
    deck.save(buffer)
    document = document_from_bytes("deck.pptx", buffer.getvalue())
    _check_invariants(document)
    paragraph = split_paragraphs(document)[0]
    assert paragraph.text == "Revenue grew by twelve percent." and paragraph.pages == [1]


def test_docx_keeps_special_hyphens_and_text_in_tracked_changes_and_smart_tags():
    import docx
    from docx.oxml import OxmlElement

    def run(*pieces):
        r = OxmlElement("w:r")
        for piece in pieces:
            if piece.startswith("<"):
                r.append(OxmlElement(piece.strip("<>")))
            else:
                t = OxmlElement("w:t")
                t.text = piece
                r.append(t)
        return r

    word = docx.Document()
    p = word.add_paragraph()._p
    p.append(run("Handles day", "<w:noBreakHyphen>", "to", "<w:noBreakHyphen>", "day work; hyphen", "<w:softHyphen>", "ation stays "))
    inserted, tag, removed = OxmlElement("w:ins"), OxmlElement("w:smartTag"), OxmlElement("w:del")
    inserted.append(run("tracked"))
    tag.append(run(" in London"))
    removed.append(run(" DELETED"))
    p.append(inserted)
    p.append(tag)
    p.append(removed)
    table = word.add_table(rows=1, cols=2)
    table.cell(0, 0)._tc.xpath("./w:p")[0].append(run("non", "<w:noBreakHyphen>", "stop"))
    table.cell(0, 1).text = "x"
    buffer = io.BytesIO()
    word.save(buffer)
    document = document_from_bytes("notes.docx", buffer.getvalue())
    _check_invariants(document)
    assert "Handles day-to-day work; hyphenation stays tracked in London" in document.text
    assert "DELETED" not in document.text and "non-stop" in document.text


def test_pptx_list_typed_into_the_title_placeholder_reaches_passages():
    """A slide whose list sits in the title placeholder (python-pptx reports it as the title): the
    first line is the heading, the rest are list items in passages; the deck is never titled "Slide 1"."""
    from pptx import Presentation

    deck = Presentation()
    slide = deck.slides.add_slide(deck.slide_layouts[5])  # "Title Only"
    frame = slide.shapes.title.text_frame
    frame.text = "Release checklist"
    for item in ("Tag the release in git", "Upload the wheels to PyPI", "Announce it on the mailing list"):
        frame.add_paragraph().text = item
    untitled = deck.slides.add_slide(deck.slide_layouts[6])  # blank: no title at all
    untitled.shapes.add_textbox(0, 0, 100, 100).text_frame.text = "Questions go to the support desk."
    buffer = io.BytesIO()
    deck.save(buffer)
    document = document_from_bytes("deck.pptx", buffer.getvalue())
    _check_invariants(document)
    assert document.title == "Release checklist"
    paragraphs = split_paragraphs(document)
    joined = " ".join(p.text for p in paragraphs)
    assert "Upload the wheels to PyPI" in joined and "Announce it on the mailing list" in joined
    assert all(p.pages for p in paragraphs)
    only_untitled = Presentation()
    only_untitled.slides.add_slide(only_untitled.slide_layouts[6]).shapes.add_textbox(0, 0, 100, 100).text_frame.text = "Agenda for Monday"
    buffer = io.BytesIO()
    only_untitled.save(buffer)
    assert document_from_bytes("agenda.pptx", buffer.getvalue()).title == "Agenda for Monday"


@pytest.mark.parametrize("name", ["broken.docx", "broken.pptx"])
def test_broken_office_files_are_refused_clearly(name):
    with pytest.raises(UnsupportedDocument, match="broken"):
        document_from_bytes(name, b"not a zip at all")


def test_a_text_file_never_takes_a_line_of_code_as_its_title():
    document = document_from_bytes("snippet.txt", b"x = compute(a, b);\n\nThe function above computes the sum of a and b.\n")
    assert document.title == ""  # the pipeline falls back to the document id
    document = document_from_bytes("notes.txt", b"Release notes\n\nThis release fixes the parser and adds PPTX support to it.\n")
    assert document.title == "Release notes"


def test_html_text_outside_block_elements_is_kept():
    document = document_from_bytes("bare.html", b"Loose words <b>in bold</b> <p>A paragraph.</p> trailing words")
    assert document.text == "Loose words in bold\n\nA paragraph.\n\ntrailing words"
