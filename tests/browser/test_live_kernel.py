"""Chapter 9 in JupyterLab, as a reader runs it: open the notebook, run every cell, move the
iteration slider, switch naive/painless, and check that the figure changes and no cell fails."""

import re
import time

from playwright.sync_api import expect

NOTEBOOK = "09_step_through.ipynb"

ALL_EXECUTED = """() => {
  const prompts = [...document.querySelectorAll('.jp-NotebookPanel .jp-CodeCell .jp-InputPrompt')];
  return prompts.length > 0 && prompts.every(p => /\\[\\d+\\]/.test(p.textContent));
}"""
IMAGE_CHANGED = """(old) => {
  const img = document.querySelector('.jp-NotebookPanel img.widget-image');
  return img !== null && img.src !== old;
}"""


def menu(page, top, item):
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(f"^{top}$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(f"^{item}$")).click()


def wait_for_new_picture(page, image, old_src, old_pixels):
    page.wait_for_function(IMAGE_CHANGED, arg=old_src, timeout=60_000)
    image.scroll_into_view_if_needed()
    pixels = image.screenshot()
    assert pixels != old_pixels, "the figure's image element changed but looks the same"
    return image.get_attribute("src"), pixels


def test_live_widget_in_jupyterlab(offline_page, lab_server, screenshots):
    start = time.perf_counter()
    url, token = lab_server.url, lab_server.token
    page = offline_page.page
    page.set_default_timeout(60_000)
    page.goto(f"{url}/lab/tree/{NOTEBOOK}?reset&token={token}")
    status = page.locator("#jp-main-statusbar")
    expect(page.locator(".jp-NotebookPanel .jp-CodeCell").first).to_be_visible(timeout=120_000)
    expect(status).to_contain_text("Idle", timeout=120_000)
    opened = time.perf_counter()

    # Start from a clean page, as after a fresh clone, then run every cell.
    menu(page, "Edit", "Clear Outputs of All Cells")
    expect(page.locator(".jp-NotebookPanel img.widget-image")).to_have_count(0)
    menu(page, "Run", "Run All Cells")
    page.wait_for_function(ALL_EXECUTED, timeout=300_000)
    expect(status).to_contain_text("Idle", timeout=120_000)
    ran = time.perf_counter()

    outputs = page.locator(".jp-NotebookPanel")
    stderr = outputs.locator(
        '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]', has_text="Error")
    assert stderr.count() == 0, stderr.all_inner_texts()
    assert outputs.locator(".jp-RenderedText", has_text="Traceback").count() == 0
    assert outputs.get_by_text("Error displaying widget").count() == 0

    image = outputs.locator("img.widget-image")
    expect(image).to_have_count(1)
    image.scroll_into_view_if_needed()
    expect(image).to_be_visible()
    src, pixels = image.get_attribute("src"), image.screenshot()

    # Move the half-step slider by typing into its readout.
    slider = outputs.locator(".widget-slider").filter(
        has=page.locator(".widget-label", has_text="half-step"))
    readout = slider.locator(".widget-readout")
    readout.fill("7")
    readout.press("Enter")
    src, pixels = wait_for_new_picture(page, image, src, pixels)
    expect(readout).to_have_text("7")
    position = outputs.locator(".widget-label", has_text="iteration 3: after the E-step")
    expect(position).to_be_visible()

    # Switch to naive EM: the same position of another run.
    outputs.locator(".widget-toggle-buttons button", has_text="naive").click()
    src, pixels = wait_for_new_picture(page, image, src, pixels)
    expect(outputs.locator(".widget-html", has_text="naive EM")).to_be_visible()
    expect(readout).to_have_text("7")

    page.screenshot(path=str(screenshots / "lab_09_step_through.png"))
    assert stderr.count() == 0 and outputs.get_by_text("Traceback").count() == 0
    assert not offline_page.errors, f"JavaScript errors in JupyterLab: {offline_page.errors}"
    print(f"\nJupyterLab: opened in {opened - start:.1f} s, ran all cells in {ran - opened:.1f} s, "
          f"whole test {time.perf_counter() - start:.1f} s; blocked: {offline_page.blocked}")
