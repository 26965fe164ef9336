"""Home in AppTest: where a newcomer starts."""

from helpers import open_page

from ui.views.lessons import lessons


def test_home_says_where_to_start_and_links_the_first_lesson():
    """Issue 27: nothing on Home pointed to the lessons."""
    at = open_page("pages/home.py")
    start = " ".join(m.value for m in at.markdown if "New here?" in m.value)
    assert f"{len(lessons())} short guided lessons" in start
    assert lessons()[0].title.lower() in start and lessons()[-1].title.lower() in start
    (link,) = [link for link in at.get("page_link") if "first lesson" in link.proto.label]
    assert link.proto.page.endswith("lessons")
