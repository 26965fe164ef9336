"""Every page renders through the router without an exception (AppTest, no browser)."""

import pytest
from helpers import ROOT, open_page

PAGES = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "pages").glob("*.py"))


@pytest.mark.parametrize("page", PAGES)
def test_page_renders_without_exception(page: str) -> None:
    at = open_page(page)
    assert at.title, f"{page} drew no title"
