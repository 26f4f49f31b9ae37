"""static/recsite/plotly.css holds exactly the style rules of the installed plotly.js bundle, and
the bundle still skips its inline <style> when the page links them (the CSP refuses it)."""

import re
from pathlib import Path

import plotly

from tests.conftest import REPO_ROOT

BUNDLE = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


def _bundle_rules(source: str) -> list[str]:
    """plotly.js's rule table (``"X .modebar": "position:absolute;..."``, X standing for the
    plot's selector, Y for the notifier's), as the rules it inserts, in its order."""
    start = source.index('{"X,X div":')
    end = source.index("};for(", start)
    entries = re.findall(
        r"""(?:"([^"]*)"|([A-Za-z_]\w*)):(?:'([^']*)'|"([^"]*)")""", source[start + 1 : end]
    )
    rules = []
    for quoted, bare, single, double in entries:
        selector = (
            (quoted or bare)
            .replace("X", ".js-plotly-plot .plotly")
            .replace("Y", ".plotly-notifier")
        )
        rules.append(f"{selector}{{{single or double}}}")
    return rules


def test_the_stylesheet_holds_the_bundles_rules_in_the_order_plotly_applies_them():
    source = BUNDLE.read_text()
    ours = (REPO_ROOT / "static" / "recsite" / "plotly.css").read_text()
    ours_rules = [line for line in ours.split("*/", 1)[1].splitlines() if line]

    # plotly inserts each rule at the top of its sheet: the last one defined comes first.
    assert ours_rules == list(reversed(_bundle_rules(source)))
    assert len(ours_rules) == 50


def test_the_bundle_skips_its_inline_styles_when_the_page_provides_them():
    source = BUNDLE.read_text()
    base = (REPO_ROOT / "templates" / "base.html").read_text()

    assert '"plotly.js-style-"+e' in source
    assert '.matches(".no-inline-styles")' in source
    assert 'id="plotly.js-style-global" class="no-inline-styles"' in base
