"""Rebuild ``../corpus/penicillin.pdf`` (the demo's PDF) from ``penicillin.txt``: two A5 pages
of real, selectable text, written with PyMuPDF. Run it only when the text changes."""

from pathlib import Path

import pymupdf

HERE = Path(__file__).resolve().parent
CORPUS = HERE.parent / "corpus"


def main() -> None:
    title, *paragraphs = HERE.joinpath("penicillin.txt").read_text().split("\n\n")
    pdf = pymupdf.open()
    pdf.set_metadata({"title": title.lstrip("# ").strip(), "author": "the loomdb team"})
    half = (len(paragraphs) + 1) // 2
    for number, part in enumerate((paragraphs[:half], paragraphs[half:]), start=1):
        page = pdf.new_page(width=420, height=595)  # A5 in points
        heading = title.lstrip("# ").strip() if number == 1 else f"{title.strip()} (continued)"
        page.insert_textbox(pymupdf.Rect(36, 36, 384, 80), heading, fontsize=14)
        body = "\n\n".join(" ".join(p.split()) for p in part)
        page.insert_textbox(pymupdf.Rect(36, 80, 384, 560), body, fontsize=9.5)
    pdf.save(CORPUS / "penicillin.pdf", garbage=4, deflate=True)


if __name__ == "__main__":
    main()
