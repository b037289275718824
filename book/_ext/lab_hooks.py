"""JupyterLab's pre-save hook for `make lab`: saving a chapter keeps its committed metadata.

Once a kernel has run, JupyterLab writes the kernel's display name and its full `language_info`
(Python's exact version, CodeMirror mode, ...) into the notebook when it saves: a diff in every
chapter a contributor touches. The hook puts back the two lines `tools/run_notebooks.py` commits,
for notebooks run by the book's kernel (`python3`), and drops per-cell timing metadata.

Used as `--ContentsManager.pre_save_hook=book._ext.lab_hooks.keep_metadata` (a dotted path,
importable from the repository's root).
"""

KERNELSPEC = {"display_name": "Python 3", "language": "python", "name": "python3"}
LANGUAGE_INFO = {"name": "python"}


def keep_metadata(model, **kwargs):
    if model.get("type") != "notebook" or not isinstance(model.get("content"), dict):
        return
    notebook = model["content"]
    metadata = notebook.setdefault("metadata", {})
    if metadata.get("kernelspec", {}).get("name", "python3") != "python3":
        return
    metadata["kernelspec"] = dict(KERNELSPEC)
    metadata["language_info"] = dict(LANGUAGE_INFO)
    for cell in notebook.get("cells", []):
        cell_metadata = cell.get("metadata", {})
        cell_metadata.pop("execution", None)
        cell_metadata.pop("ExecuteTime", None)
