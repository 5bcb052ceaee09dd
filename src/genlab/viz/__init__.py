"""Pictures: image grids, GIFs and the HTML report."""
from .grid import auto_scale, make_grid, save_gif, save_grid, to_uint8
from .report import Section, render, write_report

__all__ = ["auto_scale", "make_grid", "save_gif", "save_grid", "to_uint8", "Section", "render", "write_report"]
