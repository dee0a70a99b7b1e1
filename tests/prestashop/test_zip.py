"""`make prestashop-zip` builds the installable module: a zip whose root folder is `relance/`."""

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_make_prestashop_zip_builds_the_installable_module() -> None:
    done = subprocess.run(
        ["make", "-s", "prestashop-zip", f"PY={sys.executable}"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    with zipfile.ZipFile(ROOT / "dist" / "relance.zip") as built:
        names = built.namelist()
        assert built.testzip() is None
    assert names and all(n.startswith("relance/") for n in names), names[:5]
    assert "relance/relance.php" in names
    # Every folder PrestaShop serves carries its index.php guard, and nothing of the tests ships.
    folders = {n.rsplit("/", 1)[0] for n in names if "/" in n.rstrip("/")}
    assert all(f"{folder}/index.php" in names for folder in folders), sorted(folders)
    assert not any("/tests/" in n for n in names)
