"""A single-file HTML report: sections of pictures and tables, images embedded as data URIs so the
file can be mailed or opened anywhere."""
from __future__ import annotations

import base64
import html
import os
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from ..files import write_text_atomic
from .grid import png_bytes

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ddd; padding-bottom: .2em; margin-top: 1.6em; }
figure { display: inline-block; margin: .5em 1.5em .5em 0; vertical-align: top; }
figcaption { font-size: .85em; color: #555; max-width: 420px; }
img { image-rendering: pixelated; border: 1px solid #eee; }
table { border-collapse: collapse; margin: .5em 0; } td, th { padding: .3em .8em; border-bottom: 1px solid #eee; }
th { text-align: left; background: #f6f6f6; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
p.note { color: #555; font-size: .9em; }
"""


@dataclass
class Section:
    title: str
    text: str = ""
    figures: list[tuple[Image.Image, str]] = field(default_factory=list)
    tables: list[tuple[list[str], list[list[object]]]] = field(default_factory=list)


def _img_tag(image: Image.Image) -> str:
    data = base64.b64encode(png_bytes(image)).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" width="{image.width}" height="{image.height}">'


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f'<td class="num">{value:.4g}</td>'
    if isinstance(value, int):
        return f'<td class="num">{value}</td>'
    return f"<td>{html.escape(str(value))}</td>"


def render(title: str, sections: list[Section], intro: str = "") -> str:
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
             f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>"]
    if intro:
        parts.append(f"<p>{intro}</p>")
    for s in sections:
        parts.append(f"<h2>{html.escape(s.title)}</h2>")
        if s.text:
            parts.append(f"<p class='note'>{s.text}</p>")
        for header, rows in s.tables:
            parts.append("<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr>")
            parts += ["<tr>" + "".join(_cell(v) for v in row) + "</tr>" for row in rows]
            parts.append("</table>")
        for image, caption in s.figures:
            parts.append(f"<figure>{_img_tag(image)}<figcaption>{html.escape(caption)}</figcaption></figure>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(path: str | os.PathLike, title: str, sections: list[Section], intro: str = "") -> Path:
    return write_text_atomic(path, render(title, sections, intro))
