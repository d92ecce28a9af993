"""Small pure parts of the dashboard: what ships in the wheel, the CSV export's cells, the chart bars."""

from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path

from app.admin.schemas import UsageReport, UsageRow, UsageTotals
from app.dashboard import service
from app.dashboard.views import STATIC_FILES

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "app" / "dashboard"


def test_templates_and_static_files_are_package_data() -> None:
    globs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["app.dashboard"]
    files = [p.relative_to(PACKAGE).as_posix() for p in PACKAGE.rglob("*") if p.is_file() and p.suffix != ".py"]
    files = [f for f in files if "__pycache__" not in f]
    assert any(f.startswith("templates/") for f in files) and any(f.startswith("static/") for f in files)
    missing = [f for f in files if not any(fnmatch.fnmatch(f, g) for g in globs)]
    assert not missing, f"not shipped by `pip install .`: {missing}"
    assert {"app.css", "app.js", "logo.svg"} <= set(STATIC_FILES)


def test_nothing_is_fetched_from_elsewhere() -> None:
    for path in (*PACKAGE.glob("templates/*.html"), *PACKAGE.glob("static/*")):
        text = path.read_text()
        assert "//cdn" not in text and "googleapis" not in text and "@import" not in text, path
        assert "localStorage" not in text and "sessionStorage" not in text, path


def _report(*rows: UsageRow) -> UsageReport:
    return UsageReport(since=None, until=None, data=list(rows), totals=UsageTotals())


def test_the_csv_keeps_names_as_text() -> None:
    row = UsageRow(api_key_id="key_1", key_name="=HYPERLINK(1)", owner="@me", model="sandbox", tasks=2, seconds=8.0)
    lines = service.usage_csv(_report(row)).splitlines()
    assert lines[0] == ",".join(service.CSV_COLUMNS)
    assert lines[1].startswith("key_1,'=HYPERLINK(1),'@me,sandbox,2,0,0,8.0,")


def test_bars_are_scaled_to_the_largest() -> None:
    bars = service.bars({"a": 2.0, "b": 8.0, "c": 0.0})
    assert [(b.label, b.width) for b in bars] == [("b", 100.0), ("a", 25.0), ("c", 0.0)]
    assert service.bars({}) == []
