"""The built chapter 1 and 9 pages, served on 127.0.0.1 with every other host blocked: their
`to_jshtml` sliders move through every frame, their math renders with the book's own MathJax, and
their scripts throw nothing."""

import time
from urllib.parse import urlsplit

import pytest

PAGES = ["09_step_through", "01_model"]
MATHJAX = "/_static/mathjax/tex-mml-chtml.js"


def animations(page):
    """The `to_jshtml` animations on the page: (slider, image, number of frames, JS name)."""
    found = []
    for container in page.locator("div.animation").all():
        slider = container.locator("input[type=range].anim-slider")
        image = container.locator("img[id^=_anim_img]")
        if slider.count() != 1 or image.count() != 1:
            continue
        name = "anim" + slider.get_attribute("id").removeprefix("_anim_slider")
        frames = page.evaluate(f"() => window['{name}'] ? window['{name}'].frames.length : 0")
        found.append((slider, image, frames, name))
    return found


@pytest.mark.parametrize("name", PAGES)
def test_static_page_offline(offline_page, static_server, screenshots, name):
    start = time.perf_counter()
    page = offline_page.page
    url = f"{static_server}/book/{name}.html"
    page.goto(url, wait_until="load")
    assert page.title(), f"{url} has no title"

    # The math: typeset by MathJax from this server, nothing left as TeX source.
    page.wait_for_function("() => window.MathJax && MathJax.startup && MathJax.startup.promise",
                           timeout=30_000)
    page.evaluate("() => MathJax.startup.promise.then(() => true)")
    mathjax = {url: status for url, status in offline_page.responses.items()
               if urlsplit(url).path == MATHJAX}
    assert mathjax and all(url.startswith(static_server) and status == 200
                           for url, status in mathjax.items()), (
        f"MathJax was not loaded from the book's own {MATHJAX}: "
        f"{[u for u in offline_page.responses if 'mathjax' in u.lower()][:3]}")
    assert page.locator("mjx-container").count() > 0, "no rendered math on the page"
    assert page.locator("mjx-merror").count() == 0, "MathJax reported a TeX error"
    text = page.locator("main").inner_text()
    assert "$$" not in text, "raw $$ left in the page: some display math was not rendered"

    # The static sliders: every frame is shown when the slider is set to it.
    found = animations(page)
    assert found, (f"no to_jshtml animation (div.animation with an input[type=range]) on "
                   f"{name}.html: its static slider is missing")
    for index, (slider, image, frames, js) in enumerate(found):
        assert frames >= 2, f"animation {js} has {frames} frames"
        slider.scroll_into_view_if_needed()
        shown = []
        for value in range(frames):
            slider.fill(str(value))
            expected = page.evaluate(f"() => window['{js}'].frames[{value}].src")
            assert image.get_attribute("src") == expected, (
                f"animation {index}: the slider at {value} does not show frame {value}")
            shown.append(expected)
        middle = frames // 2
        assert len({shown[0], shown[middle], shown[-1]}) == 3, (
            f"animation {index}: the first, middle and last frames look the same")
        if name == "09_step_through":  # every half-step has its own label
            assert len(set(shown)) == frames, f"animation {index}: repeated frames"
        slider.fill(str(middle))
        image.screenshot(path=str(screenshots / f"{name}_animation{index}_frame{middle}.png"))

    # The note on the live widgets: under each of them here, on this static page only (in
    # JupyterLab a kernel runs them, and no markdown cell carries it).
    notes = page.locator(".cell_output.kernel-note")
    assert notes.count() >= 1, f"{name}.html: no 'needs a running kernel' note"
    for index in range(notes.count()):
        cell = notes.nth(index).locator("xpath=..")
        assert "tag_skip-execution" in (cell.get_attribute("class") or "")
        assert "running kernel" in notes.nth(index).inner_text()
    said = page.locator("article p", has_text="running kernel")
    assert said.count() == notes.count(), (
        f"{name}.html says 'running kernel' outside the notes: {said.all_inner_texts()}")

    page.screenshot(path=str(screenshots / f"{name}.png"), full_page=True)
    assert not offline_page.errors, f"JavaScript errors on {name}.html: {offline_page.errors}"
    if name == "09_step_through":  # this chapter asks for nothing outside the book
        assert not offline_page.blocked, f"requests to other hosts: {offline_page.blocked}"
    print(f"\n{name}: {len(found)} animation(s), {time.perf_counter() - start:.1f} s; "
          f"blocked requests: {offline_page.blocked}")
