"""The drivers, installed as ``twinjax_experiments`` (setup.py maps this folder to that name,
the editable install too): imported as ``experiments`` they would be a second copy of every
module, with dataclasses that are not the app's."""

if __name__ != "twinjax_experiments":
    raise ImportError(
        f"import twinjax_experiments, not {__name__} (pip install -e . maps experiments/ to it)"
    )
