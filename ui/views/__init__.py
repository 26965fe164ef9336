"""One module per view (a tab or panel of a page): each draws its part of the screen from the
engine's results, with the figures of ui.figures."""
