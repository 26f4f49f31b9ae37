"""The dashboard's navigation: one entry per page, whichever app serves it.

Apps never import ``recsite``, and ``recommender`` never imports the apps built on it, so the
menu is assembled here, in the wiring layer. An entry whose route is not installed is skipped,
and an entry for admins only is hidden from merchandisers (the view still checks: hiding a link
is not a permission).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse

from accounts.roles import Role
from accounts.selectors import user_role


@dataclass(frozen=True, slots=True)
class NavEntry:
    label: str
    url_name: str
    admin_only: bool = False


NAV: tuple[NavEntry, ...] = (
    NavEntry("Overview", "dashboard:overview"),
    NavEntry("Products", "dashboard:products"),
    NavEntry("Customers", "dashboard:customers"),
    NavEntry("Tuning", "dashboard:tuning"),
    NavEntry("Rules", "dashboard:rules"),
    NavEntry("Evaluation", "dashboard:evaluation"),
    NavEntry("Tags", "tagging-dashboard:review"),
    NavEntry("Churn", "churn-dashboard:index"),
    NavEntry("Experiments", "experiments-dashboard:index"),
    NavEntry("Jobs", "dashboard:jobs", admin_only=True),
    NavEntry("Reports", "privacy-dashboard:reports", admin_only=True),
)


# Fragments other apps add to recommender's pages, loaded by the page's script from their own
# URLs: (title, url name taking the customer's / product's external id). The customer inspector
# shows a customer's interest tags (tagging), churn risk (churn) and network (social) this way,
# without recommender importing any of these apps.
CUSTOMER_PANELS: tuple[tuple[str, str], ...] = (
    ("Interest tags", "tagging-dashboard:customer-interests"),
    ("Churn risk", "churn-dashboard:customer-risk"),
    ("Network", "social-dashboard:customer-network"),
)
PRODUCT_PANELS: tuple[tuple[str, str], ...] = (("Tags", "tagging-dashboard:product-tags"),)


def _installed(panels: tuple[tuple[str, str], ...]) -> list[tuple[str, str]]:
    out = []
    for title, url_name in panels:
        try:
            reverse(url_name, args=["x"])
        except NoReverseMatch:
            continue
        out.append((title, url_name))
    return out


def _is_current(path: str, url: str) -> bool:
    """The page at ``url`` or one below it; the overview (the dashboard's root, which every
    other page is below) only when it is the page itself."""
    if path == url:
        return True
    root = reverse(NAV[0].url_name)
    return url != root and path.startswith(url)


def navigation(request: HttpRequest) -> dict[str, object]:
    """Template context processor for the signed-in user.

    ``nav``: [(label, url, is_current)]; ``customer_panels`` / ``product_panels``: [(title,
    url name)] of the installed fragments, for ``{% url url_name customer.external_id %}``.
    """
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"nav": [], "customer_panels": [], "product_panels": []}
    is_admin = user_role(user) == Role.ADMIN
    entries = []
    for entry in NAV:
        if entry.admin_only and not is_admin:
            continue
        try:
            url = reverse(entry.url_name)
        except NoReverseMatch:
            continue  # That page's app is not installed (or not built yet).
        entries.append((entry.label, url, _is_current(request.path, url)))
    return {
        "nav": entries,
        "customer_panels": _installed(CUSTOMER_PANELS),
        "product_panels": _installed(PRODUCT_PANELS),
    }
