"""The library imports without the app: no Hydra, no OmegaConf, no app config."""

import subprocess
import sys

LIBRARY = (
    "twinjax.data, twinjax.runtime, twinjax.twins, twinjax.train, twinjax.bayes, "
    "twinjax.federated, twinjax.abm, twinjax.eval, twinjax.adapters, twinjax.pipeline, "
    "twinjax.physiology, twinjax.mechanistic, twinjax.glucose, twinjax.integrations"
)


def test_library_imports_neither_hydra_nor_omegaconf():
    code = (
        f"import sys, {LIBRARY}\n"
        "app = sorted(m for m in sys.modules\n"
        "             if m.split('.')[0] in ('hydra', 'omegaconf') or m == 'twinjax.config')\n"
        "print(','.join(app))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True
    )
    assert out.stdout.strip() == "", f"the library pulled in: {out.stdout.strip()}"


def test_the_check_sees_an_app_import():
    """The same probe does report hydra when the app's config is imported (it can fail)."""
    code = "import sys, twinjax.config\nprint('hydra' in sys.modules)\n"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True
    )
    assert out.stdout.strip() == "True"
