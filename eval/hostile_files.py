"""Hostile files of issue 20, item 6 (other formats), built in memory for eval/redteam.py and
the tests: each is small on the wire and costly to parse."""
from __future__ import annotations

import io
import zipfile

_CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/>'
    "</Types>"
)
_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/>'
    "</Relationships>"
)
_W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"


def docx(paragraph_xml: bytes, repeat: int) -> bytes:
    """A minimal .docx whose body is ``paragraph_xml`` ``repeat`` times (streamed into the zip)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        archive.writestr("[Content_Types].xml", _CONTENT_TYPES)
        archive.writestr("_rels/.rels", _RELS)
        with archive.open("word/document.xml", "w", force_zip64=True) as member:
            member.write(f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><w:document xmlns:w="{_W}"><w:body>'.encode())
            chunk = paragraph_xml * 1000
            for _ in range(repeat // 1000):
                member.write(chunk)
            member.write(paragraph_xml * (repeat % 1000))
            member.write(b"</w:body></w:document>")
    return out.getvalue()


def many_paragraphs_docx(paragraphs: int = 66_000) -> bytes:
    """~88 KB: 66,000 one-word paragraphs (1.3-1.7 ms each in python-docx: > 99 CPU-s, issue 20)."""
    return docx(b"<w:p><w:r><w:t>beacon</w:t></w:r></w:p>", paragraphs)


def inflating_docx(unzipped_mb: int = 190) -> bytes:
    """A .docx whose document.xml unpacks to ``unzipped_mb`` MB of empty runs (under the old
    200 MB check; 2.98 GB RSS in the issue)."""
    unit = b"<w:p><w:r><w:t>a</w:t></w:r></w:p>"
    return docx(unit, unzipped_mb * 2**20 // len(unit))


def lying_docx() -> bytes:
    """A .docx whose central directory declares document.xml as 1 KB while it unpacks to 190 MB."""
    data = bytearray(inflating_docx(190))
    # Patch the uncompressed size (and zip64 extra, if any) of document.xml in the central directory.
    name = b"word/document.xml"
    at = data.rfind(b"PK\x01\x02")
    while at >= 0:
        name_len = int.from_bytes(data[at + 28 : at + 30], "little")
        if bytes(data[at + 46 : at + 46 + name_len]) == name:
            data[at + 24 : at + 28] = (1024).to_bytes(4, "little")
            extra_len = int.from_bytes(data[at + 30 : at + 32], "little")
            extra = at + 46 + name_len
            end = extra + extra_len
            while extra + 4 <= end:
                tag, size = int.from_bytes(data[extra : extra + 2], "little"), int.from_bytes(data[extra + 2 : extra + 4], "little")
                if tag == 1 and size >= 8:  # zip64: the real sizes; say 1 KB there too
                    data[extra + 4 : extra + 12] = (1024).to_bytes(8, "little")
                extra += 4 + size
            break
        at = data.rfind(b"PK\x01\x02", 0, at)
    return bytes(data)


def many_shapes_pptx(shapes: int = 110_000) -> bytes:
    """A one-slide .pptx whose slide holds ``shapes`` text boxes (226 KB -> 1.54 GB RSS in the issue)."""
    from pptx import Presentation
    from pptx.util import Inches

    presentation = Presentation()
    slide = presentation.slides.add_slide(presentation.slide_layouts[6])
    slide.shapes.add_textbox(Inches(1), Inches(1), Inches(1), Inches(1)).text_frame.text = "beacon"
    base = io.BytesIO()
    presentation.save(base)
    source = zipfile.ZipFile(io.BytesIO(base.getvalue()))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for info in source.infolist():
            data = source.read(info.filename)
            if info.filename == "ppt/slides/slide1.xml":
                start = data.index(b"<p:sp>")
                end = data.index(b"</p:sp>") + len(b"</p:sp>")
                data = data[:start] + data[start:end] * shapes + data[end:]
            archive.writestr(info, data)
    return out.getvalue()


def nested_html(depth: int = 990, bold: int = 190_000) -> bytes:
    """990 nested <article> around 190,000 <b> (> 51 CPU-s in the issue; under the depth and element limits)."""
    return ("<html><body>" + "<article>" * depth + "<b>x</b> " * bold + "</article>" * depth + "</body></html>").encode()


def page_tree_pdf(entries: int = 2_000_000) -> bytes:
    """A PDF whose /Pages node lists one page ``entries`` times (413 only after 35.5 CPU-s in the issue)."""
    stream = b"BT /F1 12 Tf 72 720 Td (The beacon is blue.) Tj ET\n"
    kids = b" ".join([b"3 0 R"] * entries)
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [" + kids + b"] /Count %d >>" % entries,
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"endstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    return pdf_from_objects(objects)


def pdf_from_objects(objects: list[bytes], trailer_extra: bytes = b"") -> bytes:
    """A PDF of these objects (numbered from 1, the first the catalog) with a correct xref table."""
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1) + b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer << /Size %d /Root 1 0 R%s >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, trailer_extra, xref)
    return bytes(out)


CASES = {
    "many-paragraphs.docx": many_paragraphs_docx,
    "inflating.docx": inflating_docx,
    "lying-sizes.docx": lying_docx,
    "many-shapes.pptx": many_shapes_pptx,
    "nested.html": nested_html,
    "page-tree.pdf": page_tree_pdf,
}
