"""Collect real technical documents for the reader's training set, with their origins.

    python -m rag.training.techdocs_collect --out /work/techdocs/files [--extra-root DIR ...]

Sources, all from packages installed on (or unpacked onto) a Debian machine and the Python
environment, never from eval/ (``EXCLUDED_PACKAGES`` are every package an evaluation set here
uses, plus the font package a hidden set is known to use):

* manual pages (``/usr/share/man/man{1,5,7,8}`` and library pages in 2/3), rendered as a reader sees
  them with ``man -l`` (man-db + groff) at 80 columns, ``col -bx``;
* GNU info manuals (``/usr/share/info``), rendered with ``info -o -`` when ``info`` is installed;
* HTML documentation (``/usr/share/doc/**.html`` and the same under each ``--extra-root``, where
  ``apt-get download`` + ``dpkg-deb -x`` unpacked doc packages);
* PDF manuals under the same roots (at most ``--max-pdf-pages`` pages each);
* READMEs of the installed Python distributions and of wheels downloaded with ``pip download --no-deps
  --only-binary :all: NAME`` (the ``METADATA`` long description, .md or .rst).

Each file is written under ``out/<kind>/`` and described by one line of ``out/sources.jsonl``:
the package, its version, the original path and where its licence is stated.  Documents are
capped per package so no single package dominates.
"""
from __future__ import annotations

import email
import json
import os
import random
import re
import subprocess
import zipfile
from collections import defaultdict
from importlib import metadata
from pathlib import Path

import typer

# Every package an evaluation set of this repository draws a document from (eval/realdocs/SOURCES.md),
# and fonts-sil-charis (a hidden set quotes its feature table): nothing from them is trained on.
EXCLUDED_PACKAGES = frozenset({
    "rsync", "grep", "zlib1g-dev", "zlib1g", "python3.11-doc", "python3-doc", "sqlite3-doc", "sqlite3",
    "texlive-publishers-doc", "texlive-latex-recommended-doc", "ranx", "charset-normalizer", "charset_normalizer",
    "pdfplumber", "fonts-sil-charis", "rag-extractive-qa", "debian-refcard",
})
MAN_SECTIONS = ("1", "5", "7", "8", "2", "3")


def is_excluded(package: str) -> bool:
    """Whether a package ("grep", "texlive-base/doc", "pypi:charset_normalizer") is one an evaluation set uses.

    PyPI names are compared without their "pypi:" prefix and with "_" read as "-": before this, the
    READMEs of the installed pdfplumber, charset-normalizer and this project were collected (their
    paragraphs shared with eval documents were dropped later, by text, but the rest was kept)."""
    name = package.removeprefix("pypi:").split("/")[0].lower()
    return name in EXCLUDED_PACKAGES or name.replace("_", "-") in EXCLUDED_PACKAGES
# PDFs keep their first pages only: the layout parser takes 0.25-0.8 s a page on these cores, and
# a manual's first pages (title, introduction, the first options and tables) vary most between manuals.
PDF_PAGES = 12


def first_pages(data: bytes, pages: int) -> bytes:
    """The PDF cut to its first ``pages`` pages (b"" when pypdf cannot read it)."""
    import io

    from pypdf import PdfReader, PdfWriter

    try:
        reader = PdfReader(io.BytesIO(data))
        writer = PdfWriter()
        for page in reader.pages[:pages]:
            writer.add_page(page)
        if reader.metadata:
            writer.add_metadata({k: str(v) for k, v in reader.metadata.items() if isinstance(k, str)})
        out = io.BytesIO()
        writer.write(out)
        return out.getvalue()
    except Exception:  # noqa: BLE001 - a PDF pypdf cannot rewrite is left out
        return b""


def _dpkg_owners() -> dict[str, str]:
    """Installed file path -> Debian package, from dpkg's file lists (one read, no dpkg -S per file)."""
    owners: dict[str, str] = {}
    info = Path("/var/lib/dpkg/info")
    for lst in info.glob("*.list"):
        package = lst.stem.split(":")[0]
        for line in lst.read_text(errors="replace").splitlines():
            owners[line] = package
    return owners


def _dpkg_versions() -> dict[str, str]:
    out = subprocess.run(["dpkg-query", "-W", "-f", "${Package}\t${Version}\n"], capture_output=True, text=True, check=False).stdout
    return dict(line.split("\t", 1) for line in out.splitlines() if "\t" in line)


def _deb_package_for(path: Path, root: Path) -> tuple[str, str]:
    """(package, version) of a file unpacked under an extra root: its doc folder names the package,
    the .deb beside the root names the version."""
    rel = path.relative_to(root).parts
    package = rel[3] if len(rel) > 3 and rel[:3] == ("usr", "share", "doc") else rel[-2]
    if package == "texlive-doc":
        package = "texlive-doc/" + (rel[5] if len(rel) > 5 else "")
    version = ""
    for deb in root.parent.glob("debs/*.deb"):
        name, _, rest = deb.name.partition("_")
        if package.startswith(name) or name.startswith(package.split("/")[0]):
            version = rest.rsplit("_", 1)[0]
    return package, version


def render_man(path: Path) -> str:
    env = {**os.environ, "MANWIDTH": "80", "MAN_KEEP_FORMATTING": "0"}
    man = subprocess.run(["man", "-l", "-P", "cat", str(path)], capture_output=True, env=env, timeout=30, check=False)
    if man.returncode != 0 or not man.stdout:
        return ""
    col = subprocess.run(["col", "-bx"], input=man.stdout, capture_output=True, timeout=30, check=False)
    return col.stdout.decode("utf-8", errors="replace")


def render_info(path: Path) -> str:
    info = subprocess.run(["info", "--subnodes", "-o", "-", "-f", str(path)], capture_output=True, timeout=60, check=False)
    return info.stdout.decode("utf-8", errors="replace") if info.returncode == 0 else ""


def _readme(raw: str) -> tuple[str, str] | None:
    """(long description, its file suffix) of a distribution's METADATA text, or None when short."""
    msg = email.message_from_string(raw)
    body = msg.get_payload() if not msg.is_multipart() else ""
    if not isinstance(body, str) or len(body) < 1500:
        return None
    ctype = (msg.get("Description-Content-Type") or "").lower()
    return body, ".md" if "markdown" in ctype else ".rst" if "rst" in ctype else ".txt"


def collect(out: Path, extra_roots: list[Path], wheel_dirs: list[Path], per_package: int, max_man: int, max_html: int, max_pdf: int, seed: int) -> dict[str, int]:
    rng = random.Random(seed)
    owners, versions = _dpkg_owners(), _dpkg_versions()
    out.mkdir(parents=True, exist_ok=True)
    sources = (out / "sources.jsonl").open("w")
    counts: dict[str, int] = defaultdict(int)
    per_pkg: dict[str, int] = defaultdict(int)

    def keep(kind: str, package: str, version: str, original: str, text: str | bytes, suffix: str, licence: str) -> None:
        if is_excluded(package) or per_pkg[package] >= per_package:
            return
        name = re.sub(r"[^A-Za-z0-9._+-]+", "_", f"{package}--{Path(original).name}")[:150]
        name = re.sub(r"\.(gz|html?|pdf|md|rst|txt)$", "", name) + suffix
        target = out / kind / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, bytes):
            target.write_bytes(text)
        else:
            target.write_text(text)
        per_pkg[package] += 1
        counts[kind] += 1
        sources.write(json.dumps({"file": f"{kind}/{name}", "kind": kind, "package": package, "version": version,
                                  "original": original, "licence": licence}) + "\n")

    # Manual pages: one page per command, shuffled so the cap samples across packages.
    pages = [p for s in MAN_SECTIONS for p in Path(f"/usr/share/man/man{s}").glob("*") if p.is_file() and not p.is_symlink()]
    rng.shuffle(pages)
    for page in pages:
        if counts["man"] >= max_man:
            break
        package = owners.get(str(page), "")
        if not package or is_excluded(package) or per_pkg[package] >= per_package:
            continue
        text = render_man(page)
        if len(text) > 2500:
            keep("man", package, versions.get(package, ""), str(page), text, ".txt", f"/usr/share/doc/{package}/copyright")
    # GNU info manuals.
    for manual in sorted(Path("/usr/share/info").glob("*.info*")):
        if re.search(r"-\d+(\.gz)?$", manual.name):
            continue  # continuation files: info reads them through the first one
        package = owners.get(str(manual), "")
        text = render_info(manual) if package else ""
        if len(text) > 5000:
            keep("info", package, versions.get(package, ""), str(manual), text, ".txt", f"/usr/share/doc/{package}/copyright")
    # HTML and PDF documentation of installed and unpacked packages.
    roots = [(Path("/"), True)] + [(root, False) for root in extra_roots]
    for suffix, kind, limit in ((".html", "html", max_html), (".pdf", "pdf", max_pdf)):
        files = []
        for root, installed in roots:
            files += [(f, root, installed) for f in (root / "usr/share/doc").rglob(f"*{suffix}") if f.is_file()]
        rng.shuffle(files)
        start = counts[kind]
        for file, root, installed in files:
            if counts[kind] - start >= limit:
                break
            if installed:
                package = owners.get(str(file), "")
                version = versions.get(package, "")
                original = str(file)
            else:
                package, version = _deb_package_for(file, root)
                original = "/" + str(file.relative_to(root))
            size = file.stat().st_size
            if not package or size < 4000 or size > (3_000_000 if kind == "pdf" else 600_000):
                continue
            data = first_pages(file.read_bytes(), PDF_PAGES) if kind == "pdf" else file.read_bytes()
            if data:
                keep(kind, package, version, original, data, suffix, f"/usr/share/doc/{package.split('/')[0]}/copyright")
    # READMEs of the Python distributions installed beside this package.
    for dist in sorted(metadata.distributions(), key=lambda d: d.metadata["Name"] or ""):
        name = (dist.metadata["Name"] or "").lower()
        raw = dist.read_text("METADATA") or ""
        found = _readme(raw) if name else None
        if found:
            msg = email.message_from_string(raw)
            keep("readme", f"pypi:{name}", dist.version, f"{name}-{dist.version} METADATA", found[0], found[1],
                 msg.get("License-Expression") or msg.get("License") or "see the distribution")
    # READMEs of downloaded wheels (pip download --no-deps --only-binary :all: NAME): their METADATA.
    for folder in wheel_dirs:
        for wheel in sorted(folder.glob("*.whl")):
            with zipfile.ZipFile(wheel) as zf:
                meta = next((n for n in zf.namelist() if n.endswith(".dist-info/METADATA")), None)
                raw = zf.read(meta).decode("utf-8", errors="replace") if meta else ""
            msg = email.message_from_string(raw)
            name = (msg.get("Name") or "").lower()
            found = _readme(raw) if name else None
            if found and f"pypi:{name}" not in per_pkg:
                keep("readme", f"pypi:{name}", msg.get("Version") or "", wheel.name + " METADATA", found[0], found[1],
                     msg.get("License-Expression") or msg.get("License") or "see the distribution")
    sources.close()
    return dict(counts)


def main(
    out: Path = typer.Option(Path("/work/techdocs/files")),
    extra_root: list[Path] = typer.Option([], help="Folders where doc packages were unpacked (dpkg-deb -x)."),
    wheels: list[Path] = typer.Option([], help="Folders of downloaded wheels whose READMEs to add."),
    per_package: int = typer.Option(40, help="At most this many documents from one package."),
    max_man: int = typer.Option(3000),
    max_html: int = typer.Option(1200),
    max_pdf: int = typer.Option(60),
    seed: int = typer.Option(19),
) -> None:
    """Collect technical documents and write out/sources.jsonl."""
    print(json.dumps(collect(out, extra_root, wheels, per_package, max_man, max_html, max_pdf, seed)))


if __name__ == "__main__":
    typer.run(main)
