"""Two small fixes to the built pages, as a local Sphinx extension.

1. Serve MathJax 3 from the built book, so math renders with no network. The copy comes from the
   PyPI package django-static-mathjax (MathJax 3.2.2); only the files the `tex-mml-chtml`
   component loads are copied into `_static/mathjax/`, which `mathjax_path` in `_config.yml`
   names.
2. Drop script tags that appear twice on a page. sphinx-thebe adds its configuration script once
   for each time its set-up runs; twice, the page throws "Identifier 'THEBE_JS_URL' has already
   been declared" and Live Code does not start.
"""

import shutil
from pathlib import Path

import mathjax  # django-static-mathjax

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


def setup(app):
    app.connect("build-finished", copy_mathjax)
    app.connect("html-page-context", dedupe_scripts, priority=900)  # after the other handlers
    return {"parallel_read_safe": True, "parallel_write_safe": True}
