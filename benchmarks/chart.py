"""Bar chart of the ratio figures as a PNG, drawn with Pillow (no browser or extra package)."""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from benchmarks.harness import Figure

WIDTH, ROW, MARGIN_LEFT, MARGIN_RIGHT = 900, 50, 330, 70
MET, MISSED, TARGET = (37, 99, 235), (220, 38, 38), (17, 24, 39)


def ratio_chart(figures: list[Figure], path: Path) -> None:
    """Draw one horizontal bar per ratio figure (value, min-max whisker, dashed target line)."""
    ratios = [f for f in figures if f.unit == "x"]
    height = 70 + ROW * max(len(ratios), 1)
    image = Image.new("RGB", (WIDTH, height), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=15)
    title = "Speed ratios (lower is faster; dashed line = target)"
    draw.text((20, 15), title, fill=TARGET, font=font)
    scale_max = max([1.5] + [f.spread[1] if f.spread else f.value for f in ratios]) * 1.1
    plot_width = WIDTH - MARGIN_LEFT - MARGIN_RIGHT

    def x_of(value: float) -> float:
        return MARGIN_LEFT + plot_width * value / scale_max

    for row, fig in enumerate(ratios):
        top = 55 + row * ROW
        draw.text((20, top + 8), f"{fig.id}  {fig.title}", fill=TARGET, font=font)
        colour = MET if fig.met else MISSED
        draw.rectangle([x_of(0), top + 6, x_of(fig.value), top + 30], fill=colour)
        if fig.spread:
            low, high = (x_of(v) for v in fig.spread)
            draw.line([low, top + 18, high, top + 18], fill=TARGET, width=2)
        for y in range(top, top + 38, 6):
            draw.line([x_of(fig.target), y, x_of(fig.target), y + 3], fill=TARGET, width=2)
        right_end = max(fig.value, fig.target, fig.spread[1] if fig.spread else 0)
        draw.text((x_of(right_end) + 8, top + 9), f"{fig.value:.2f}x", fill=TARGET, font=font)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
