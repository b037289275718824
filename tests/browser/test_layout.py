"""Every built page of the book at 1280 px and at 390 px (a phone), served on 127.0.0.1 with every
other host blocked: nothing is wider than the content column, and no page throws or reaches out.

- At 1280 px nothing sticks out of the column, except code that scrolls inside its own block.
- At 390 px the same for figures (images, the animation player); a display equation wider than
  the column must scroll inside it with a visible scroll bar (none is cut); code blocks scroll.
- Figures' text: every matplotlib figure carries the size of its smallest text at natural size
  (PNG metadata written by `figures.py`); shown at 1280 px, that text is at least 9 px high.
- No JavaScript error and no request to another host, on any page.

One page load per page: measured at 1280 px, then the viewport narrows to 390 px and it is
measured again (the layout is pure CSS, so the same page reflows).
"""

import io
import os
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from PIL import Image

WIDE, NARROW = 1280, 390
MIN_TEXT_PX = 9.0
TOLERANCE = 1.0  # px: sub-pixel rounding of a box that exactly fills the column

#: The pages: every chapter, the intro, the appendices (of the build the fixtures serve).
ROOT = Path(__file__).resolve().parents[2]
HTML = Path(os.environ.get("BOOK_HTML", ROOT / "_build" / "html"))
PAGES = sorted(p.stem for p in (HTML / "book").glob("*.html")) or ["09_step_through"]

#: In the page, for the viewport's width: every element that sticks out of the content column,
#: reported once, at its outermost offending block. `allowScroll` is a CSS selector of the blocks
#: that may scroll inside the column (with a visible bar); anything inside such a block is fine
#: when the block itself fits and really shows a scroll bar.
MEASURE = r"""({allowScroll}) => {
  const article = document.querySelector('article.bd-article');
  const box = article.getBoundingClientRect();
  const style = getComputedStyle(article);
  const left = box.left + parseFloat(style.paddingLeft);
  const right = box.right - parseFloat(style.paddingRight);
  const column = right - left;
  const out = [];
  const seen = new Set();
  const describe = (el) => {
    const id = el.id ? '#' + el.id : '';
    const cls = el.classList.length ? '.' + [...el.classList].slice(0, 3).join('.') : '';
    const label = el.closest('div.math, mjx-container') ? (el.closest('div.math')?.id || '') : '';
    let text = (el.innerText || el.getAttribute('alt') || '').replace(/\s+/g, ' ').trim();
    const math = el.closest('mjx-container') || el.querySelector('mjx-container');
    if (math && window.MathJax?.startup?.document) {  // the TeX, where MathJax has it
      for (const item of MathJax.startup.document.math) {
        if (item.typesetRoot === math) text = '$' + item.math.replace(/\s+/g, ' ').trim() + '$';
      }
    }
    return {element: el.tagName.toLowerCase() + id + cls, equation: label,
            text: text.slice(0, 90), width: Math.round(el.getBoundingClientRect().width),
            column: Math.round(column)};
  };
  const scrolls = (el) => {
    const s = getComputedStyle(el);
    return ['auto', 'scroll'].includes(s.overflowX) && el.scrollWidth > el.clientWidth + 1;
  };
  for (const el of article.querySelectorAll('*')) {
    if (el.closest('mjx-assistive-mml')) continue;  // MathJax's copy for screen readers, clipped
    const r = el.getBoundingClientRect();
    if (r.width === 0 || r.height === 0) continue;
    if (r.right <= right + 1 && r.left >= left - 1) continue;
    if (getComputedStyle(el).position === 'fixed') continue;
    // Inside a block allowed to scroll, which fits, scrolls, and shows its bar: fine.
    const scroller = el.closest(allowScroll);
    if (scroller && scroller !== el) {
      const b = scroller.getBoundingClientRect();
      const bar = scroller.offsetHeight - scroller.clientHeight;
      if (b.right <= right + 1 && b.left >= left - 1 && scrolls(scroller) && bar > 0) continue;
    }
    // Report the outermost offender only.
    let top = el;
    for (let p = el.parentElement; p && p !== article; p = p.parentElement) {
      const q = p.getBoundingClientRect();
      if (q.right > right + 1 || q.left < left - 1) top = p;
    }
    if (seen.has(top)) continue;
    seen.add(top);
    out.push(describe(top));
  }
  // Scroll containers that scroll but show no bar (cut, not scrollable to the eye).
  const hidden = [];
  for (const el of article.querySelectorAll(allowScroll)) {
    if (el.scrollWidth > el.clientWidth + 1 && !(el.offsetHeight - el.clientHeight > 0)
        && getComputedStyle(el).overflowX !== 'visible') hidden.push(describe(el));
  }
  return {column, out, hidden};
}"""

#: Images (with their natural and shown widths, and the smallest text of an animation's figure).
IMAGES = r"""() => [...document.querySelectorAll('article.bd-article img')]
  .filter(img => img.naturalWidth > 0 && img.getBoundingClientRect().width > 0)
  .map(img => ({src: img.currentSrc.slice(0, 200), natural: img.naturalWidth,
                shown: img.getBoundingClientRect().width,
                text: img.closest('div.animation')?.dataset.smallestTextPx || null,
                where: img.closest('section[id]')?.id || ''}))"""

#: Code blocks that scroll at this width (allowed, but listed: code lines should fit).
SCROLLING_CODE = r"""() => [...document.querySelectorAll('article.bd-article div.highlight pre')]
  .filter(pre => pre.innerText.trim() && pre.scrollWidth > pre.clientWidth + 1)
  .map(pre => ({input: !!pre.closest('.cell_input'),
                where: pre.closest('section[id]')?.id || '',
                line: pre.innerText.split('\n').reduce((a, b) => b.length > a.length ? b : a)}))"""

CODE = "div.highlight pre, div.highlight, pre"
#: At 390 px a display equation or a table may scroll (with a visible bar) inside the column.
EQUATIONS = "div.math, mjx-container[display='true']"
TABLES = ".pst-scrollable-table-container"


def smallest_text(book_html, image):
    """The smallest text (px, at natural size) a figure records; None for other pictures."""
    if image["text"]:
        return float(image["text"])
    src = image["src"]
    path = urlsplit(src).path
    if src.startswith("data:"):
        return None  # an animation's frame: its container says (above) or nothing does
    if not path.startswith("/"):
        return None
    data = (book_html / path.lstrip("/")).read_bytes()
    image = Image.open(io.BytesIO(data))
    if image.format != "PNG" or "matplotlib" not in image.info.get("Software", "").lower():
        return None
    value = image.info.get("Smallest text px")
    assert value, (f"{path}: a matplotlib figure without its smallest text size (was it shown "
                   "by a notebook that imports figures?)")
    return float(value)


@pytest.mark.parametrize("name", PAGES)
def test_layout(offline_pages, static_server, book_html, screenshots, name):
    start = time.perf_counter()
    offline = offline_pages()
    page = offline.page
    problems, measured = [], []
    try:
        page.set_viewport_size({"width": WIDE, "height": 900})
        page.goto(f"{static_server}/book/{name}.html", wait_until="load")
        if page.locator("script[src*='mathjax']").count():  # typeset before measuring
            page.wait_for_function(
                "() => window.MathJax && MathJax.startup && MathJax.startup.promise",
                timeout=30_000)
            page.evaluate("() => MathJax.startup.promise.then(() => true)")

        wide = page.evaluate(MEASURE, {"allowScroll": CODE})
        for code in page.evaluate(SCROLLING_CODE):  # allowed; listed for the authors
            print(f"\n  {name} #{code['where']}: a {'cell' if code['input'] else 'listing'} "
                  f"line scrolls at {WIDE} px ({len(code['line'])} chars): {code['line'][:60]}")
        problems += [f"{WIDE} px: wider than the {p['column']} px column: {p}"
                     for p in wide["out"]]

        # Figures' smallest text, as shown at 1280 px.
        for image in page.evaluate(IMAGES):
            size = smallest_text(book_html, image)
            if size is None:
                continue
            measured.append(image)
            shown = size * image["shown"] / image["natural"]
            if shown < MIN_TEXT_PX - 0.05:
                problems.append(f"{WIDE} px: a figure's smallest text is {shown:.1f} px "
                                f"(< {MIN_TEXT_PX}): section #{image['where']}, "
                                f"{image['src'][-40:]}")

        page.set_viewport_size({"width": NARROW, "height": 844})
        page.wait_for_timeout(100)
        narrow = page.evaluate(MEASURE, {"allowScroll": f"{CODE}, {EQUATIONS}, {TABLES}"})
        problems += [f"{NARROW} px: wider than the {p['column']} px column: {p}"
                     for p in narrow["out"]]
        problems += [f"{NARROW} px: scrolls with no visible bar: {p}" for p in narrow["hidden"]]
        if problems:
            page.screenshot(path=str(screenshots / f"layout_{name}_{NARROW}.png"), full_page=True)

        assert not offline.errors, f"JavaScript errors on {name}.html: {offline.errors}"
        assert not offline.blocked, f"requests to other hosts from {name}.html: {offline.blocked}"
        assert not problems, f"{name}.html:\n" + "\n".join(problems)
    finally:
        page.close()
        print(f"\n{name}: {time.perf_counter() - start:.1f} s, {len(measured)} figures' text "
              "sizes checked")
