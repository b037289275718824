"""Chapter 4 in JupyterLab with jupyterlab-myst, as a Binder or `make lab` reader sees it: its
MyST renders (exercises with titles, folded solutions, admonitions, numbered equations and their
references, a link to another chapter that opens it), and saving it after a run keeps its
metadata (the pre-save hook of `make lab`)."""

import json
import re
import time

from playwright.sync_api import expect

NOTEBOOK = "04_log_domain.ipynb"
LINKED = "05_singular_empty.ipynb"

#: The text of every rendered markdown cell, folded solutions included, without KaTeX's copy of
#: the TeX source (the MathML annotation).
RENDERED_TEXT = """() => [...document.querySelectorAll('.jp-NotebookPanel .jp-MarkdownCell .myst')]
  .map(node => {
    const copy = node.cloneNode(true);
    copy.querySelectorAll('.katex-mathml, annotation').forEach(e => e.remove());
    return copy.textContent;
  })"""
ALL_EXECUTED = """() => {
  const prompts = [...document.querySelectorAll('.jp-NotebookPanel .jp-CodeCell .jp-InputPrompt')];
  return prompts.length > 0 && prompts.every(p => /\\[\\d+\\]/.test(p.textContent));
}"""
#: MyST source that must not survive rendering.
RAW = [":class:", ":label:", "{eq}", "{doc}", "{ref}", "{exercise}", "{solution}", "```", "$$",
       "(eq-ch4-"]


def menu(page, top, item):
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(f"^{top}$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(f"^{item}$")).click()


def source_counts(path):
    """What the notebook's markdown holds: exercises, solutions, admonitions, labelled equations."""
    cells = json.loads(path.read_text())["cells"]
    text = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    return {
        "markdown cells": sum(c["cell_type"] == "markdown" for c in cells),
        "exercises": len(re.findall(r"^```\{exercise\}", text, re.M)),
        "solutions": len(re.findall(r"^````?\{solution\}", text, re.M)),
        "admonitions": len(re.findall(r"^```\{(?:note|warning|tip|important|caution|attention|"
                                      r"hint|seealso|danger|error|admonition)\}", text, re.M)),
        "labels": re.findall(r"^\$\$ *\((eq-[\w-]+)\)", text, re.M),
        "eq refs": len(re.findall(r"\{eq\}`", text)),
    }


def test_chapter_renders_in_jupyterlab(offline_page, lab_server, screenshots):
    start = time.perf_counter()
    page = offline_page.page
    page.set_default_timeout(60_000)
    page.set_viewport_size({"width": 1280, "height": 1400})
    expected = source_counts(lab_server.root / NOTEBOOK)
    assert expected["exercises"] and expected["admonitions"] and expected["labels"], expected
    page.goto(f"{lab_server.url}/lab/tree/{NOTEBOOK}?reset&token={lab_server.token}")
    panel = page.locator(".jp-NotebookPanel")
    expect(panel.locator(".jp-MarkdownCell .myst").first).to_be_visible(timeout=120_000)
    expect(page.locator("#jp-main-statusbar")).to_contain_text("Idle", timeout=120_000)
    # Every markdown cell rendered by jupyterlab-myst (its output is a `.myst` node).
    expect(panel.locator(".jp-MarkdownCell .myst")).to_have_count(expected["markdown cells"],
                                                                  timeout=60_000)

    texts = page.evaluate(RENDERED_TEXT)
    for raw in RAW:
        found = [t[max(0, t.find(raw) - 60):t.find(raw) + 60] for t in texts if raw in t]
        assert not found, f"raw MyST {raw!r} in the rendered cells: {found[:3]}"

    # Exercises: titled boxes "Exercise n (title)"; solutions folded below them.
    exercises = panel.locator("aside.myst-exercise")
    expect(exercises).to_have_count(expected["exercises"])
    expect(exercises.first.locator(".myst-exercise-title")).to_have_text(
        re.compile(r"^Exercise 1 \(.+\)$"))
    solutions = panel.locator(".jp-MarkdownCell .myst details")
    expect(solutions).to_have_count(expected["solutions"])
    expect(panel.locator(".jp-MarkdownCell .myst details[open]")).to_have_count(0)
    expect(solutions.first.locator("summary")).to_contain_text("Solution to Exercise 1")

    # Admonitions: boxes with their titles, not code blocks.
    admonitions = panel.locator("aside.myst-admonition")
    expect(admonitions).to_have_count(expected["admonitions"])
    expect(admonitions.first.locator(".myst-admonition-header")).not_to_be_empty()

    # Labelled equations carry their number; {eq} references are links to them.
    for label in expected["labels"]:
        equation = panel.locator(f".jp-MarkdownCell .myst [id='{label}']")
        expect(equation).to_have_count(1)
        expect(equation.locator(".katex-display")).to_have_count(1)
    numbers = panel.locator(".jp-MarkdownCell .myst [id^='eq-ch4-']").all_inner_texts()
    assert all(re.search(r"\(\d+\)", n) for n in numbers), numbers
    references = panel.locator(".jp-MarkdownCell .myst a[href^='#eq-ch4-']")
    assert references.count() >= expected["eq refs"] > 0
    shown = references.evaluate_all("links => links.map(a => a.textContent)")  # folded too
    assert all(re.fullmatch(r"\(?\d+\)?", t.strip()) for t in shown), shown

    equation = panel.locator(f"[id='{expected['labels'][0]}']")
    equation.scroll_into_view_if_needed()
    page.screenshot(path=str(screenshots / "lab_04_equations.png"))
    exercises.first.scroll_into_view_if_needed()
    page.screenshot(path=str(screenshots / "lab_04_exercises.png"))
    admonitions.first.scroll_into_view_if_needed()
    page.screenshot(path=str(screenshots / "lab_04_admonition.png"))

    # A plain Markdown link to another chapter opens that notebook in JupyterLab.
    link = panel.locator(f".jp-MarkdownCell .myst a[href*='{LINKED}']").first
    link.scroll_into_view_if_needed()
    link.click()
    expect(page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab", has_text=LINKED)).to_have_count(1)
    assert "/lab/tree/" in page.url and "/files/" not in page.url, page.url  # still JupyterLab
    assert not offline_page.errors, f"JavaScript errors in JupyterLab: {offline_page.errors}"
    print(f"\nJupyterLab MyST check: {time.perf_counter() - start:.1f} s; "
          f"blocked: {offline_page.blocked}")


def test_saving_keeps_metadata(offline_page, lab_server, screenshots):
    """Run every cell of a chapter, save it: its metadata and sources stay as committed."""
    path = lab_server.root / NOTEBOOK
    before = json.loads(path.read_text())
    page = offline_page.page
    page.set_default_timeout(60_000)
    page.goto(f"{lab_server.url}/lab/tree/{path.name}?reset&token={lab_server.token}")
    status = page.locator("#jp-main-statusbar")
    expect(page.locator(".jp-NotebookPanel .jp-CodeCell").first).to_be_visible(timeout=120_000)
    expect(status).to_contain_text("Idle", timeout=120_000)
    menu(page, "Run", "Run All Cells")
    page.wait_for_function(ALL_EXECUTED, timeout=300_000)
    expect(status).to_contain_text("Idle", timeout=120_000)
    mtime = path.stat().st_mtime_ns
    menu(page, "File", "Save Notebook")
    # Wait with page.wait_for_timeout, not time.sleep: the offline page's request filter runs in
    # this process, so the save's requests move only while Playwright is called.
    deadline = time.monotonic() + 120
    while path.stat().st_mtime_ns == mtime and time.monotonic() < deadline:
        page.wait_for_timeout(200)
    page.wait_for_timeout(1000)  # the write itself
    saved = path.stat().st_mtime_ns != mtime
    if not saved:
        page.screenshot(path=str(screenshots / "lab_save_failed.png"))
    assert saved, "the notebook was not saved"
    after = json.loads(path.read_text())
    assert after["metadata"] == before["metadata"], after["metadata"]
    assert (after["nbformat"], after["nbformat_minor"]) == (before["nbformat"],
                                                            before["nbformat_minor"])
    assert len(after["cells"]) == len(before["cells"])
    for old, new in zip(before["cells"], after["cells"]):
        assert new["source"] == old["source"] and new["metadata"] == old["metadata"]
        assert set(new) == set(old), f"keys added to a cell: {set(new) - set(old)}"
    assert not offline_page.errors, f"JavaScript errors in JupyterLab: {offline_page.errors}"
