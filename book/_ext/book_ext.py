"""Small fixes to the built pages, as a local Sphinx extension.

1. Serve MathJax 3 from the built book, so math renders with no network. The copy comes from the
   PyPI package django-static-mathjax (MathJax 3.2.2); only the files the `tex-mml-chtml`
   component loads are copied into `_static/mathjax/`, which `mathjax_path` in `_config.yml`
   names.
2. Drop script tags that appear twice on a page. sphinx-thebe adds its configuration script once
   for each time its set-up runs; twice, the page throws "Identifier 'THEBE_JS_URL' has already
   been declared" and Live Code does not start.
3. The note "these controls need a running kernel" under every code cell tagged `skip-execution`
   (the live widgets: the book build does not run them, so the page has no output for them).
   It is added here, to the static page only: in JupyterLab, Binder or Live Code a kernel runs
   and the cell's own output takes its place (the note sits in the cell's output area, which
   Live Code replaces when the cell runs).
4. `book.css`: display equations and figures fit the content column on any screen (wide
   equations scroll with a visible bar; images and the animation player scale to the width).
"""

import shutil
from pathlib import Path

import mathjax  # django-static-mathjax
from docutils import nodes

STATIC = Path(__file__).parent / "static"
KERNEL_NOTE = ("These controls need a running kernel: open this page with the launch button at "
               "the top (the rocket icon: Binder or Live Code) and run the cell.")

SOURCE = Path(mathjax.__file__).parent / "static" / "mathjax" / "es5"
PARTS = ["tex-mml-chtml.js", "input", "output", "ui", "adaptors"]


def copy_mathjax(app, exception):
    if exception is not None or app.builder.format != "html":
        return
    target = Path(app.outdir) / "_static" / "mathjax"
    for part in PARTS:
        src = SOURCE / part
        if src.is_dir():
            shutil.copytree(src, target / part, dirs_exist_ok=True)
        else:
            target.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, target / part)


def dedupe_scripts(app, pagename, templatename, context, doctree):
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, unique = set(), []
    for script in scripts:
        attributes = getattr(script, "attributes", {})
        key = (getattr(script, "filename", str(script)) or "", repr(sorted(attributes.items())))
        if key not in seen:
            seen.add(key)
            unique.append(script)
    scripts[:] = unique


def add_kernel_notes(app, doctree):
    """Put the note in the output area of every code cell that the book does not execute."""
    for cell in doctree.findall(nodes.container):
        if (cell.get("nb_element") != "cell_code"
                or "tag_skip-execution" not in cell["classes"]):
            continue
        if any(child.get("nb_element") == "cell_code_output" for child in cell.children):
            continue
        note = nodes.paragraph("", "", nodes.emphasis(text=KERNEL_NOTE))
        cell += nodes.container("", note, nb_element="cell_code_output",
                                classes=["cell_output", "kernel-note"])


def add_static(app):
    """Copy book.css into the build and link it from every page.

    Copied here, before any page is written, and always: Sphinx 7.4 does not overwrite a file of
    `html_static_path` that an earlier build left in `_static`, so an edit would not show.
    """
    if app.builder.format != "html":
        return
    target = Path(app.outdir) / "_static"
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy2(STATIC / "book.css", target / "book.css")
    app.add_css_file("book.css")


def setup(app):
    app.connect("builder-inited", add_static)
    app.connect("doctree-read", add_kernel_notes)
    app.connect("build-finished", copy_mathjax)
    app.connect("html-page-context", dedupe_scripts, priority=900)  # after the other handlers
    return {"version": "2", "parallel_read_safe": True, "parallel_write_safe": True}
