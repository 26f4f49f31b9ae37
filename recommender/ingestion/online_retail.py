"""The raw UCI Online Retail export: parsing and the rules that turn it into recsite data.

Framework-free. The export (Chen, Sain & Guo 2012, UCI ML Repository #352, CC BY 4.0) has one
line per invoice line: ``InvoiceNo, StockCode, Description, Quantity, InvoiceDate, UnitPrice,
CustomerID, Country``. The rules, documented in ``docs/ingestion.md``:

* every line falls into exactly one bucket, tested in this order: guest (no CustomerID),
  cancellation (InvoiceNo starting with ``C``), non-product (:data:`NON_PRODUCT_CODES`,
  vouchers), invalid (quantity <= 0 or unit price < 0), imported (one ``purchase`` event);
* products come from catalogue lines (:func:`is_catalogue_line`), guest lines included;
* customers come from imported lines.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from recommender.ingestion.records import FieldError, RowError

COLUMNS = (
    "InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice",
    "CustomerID", "Country",
)  # fmt: skip
# Stock codes that are charges, fees, adjustments or samples rather than goods (postage,
# DOTCOM postage, manual, carriage, discount, samples, bank charges, Amazon fee, CRUK
# commission, pads to match all cushions, adjust bad debt). Compared in upper case.
NON_PRODUCT_CODES = frozenset(
    {"POST", "DOT", "M", "C2", "D", "S", "BANK CHARGES", "AMAZONFEE", "CRUK", "PADS", "B"}
)
# Gift vouchers (GIFT_0001_10, GIFT_0001_20, …) are money, not products.
VOUCHER_PREFIX = "GIFT_0001_"
# InvoiceDate is the shop's wall-clock time in the UK.
SHOP_TIME_ZONE = ZoneInfo("Europe/London")
SOURCE_ATTRIBUTES = {"source": "uci-online-retail"}
EVENT_TYPE = "purchase"
CENT = Decimal("0.01")

SKIP_GUEST = "guest"
SKIP_CANCELLATION = "cancellation"
SKIP_NON_PRODUCT = "non_product"
SKIP_INVALID = "invalid"
SKIP_REASONS = (SKIP_GUEST, SKIP_CANCELLATION, SKIP_NON_PRODUCT, SKIP_INVALID)


@dataclass(frozen=True, slots=True)
class RetailLine:
    line: int
    invoice: str
    stock_code: str  # Upper case: the export spells some codes both ways (85123a, 85123A).
    description: str
    quantity: int
    invoiced_at: datetime  # UTC.
    unit_price: Decimal
    customer_id: str  # "" for a guest checkout.
    country: str

    @property
    def order_key(self) -> tuple[datetime, int]:
        """Chronological order; the file order breaks ties."""
        return (self.invoiced_at, self.line)


def is_non_product(stock_code: str) -> bool:
    return stock_code in NON_PRODUCT_CODES or stock_code.startswith(VOUCHER_PREFIX)


def skip_reason(line: RetailLine) -> str | None:
    """Why a line is not imported as a purchase event, or ``None`` when it is."""
    if not line.customer_id:
        return SKIP_GUEST
    if line.invoice.startswith("C"):
        return SKIP_CANCELLATION
    if is_non_product(line.stock_code):
        return SKIP_NON_PRODUCT
    if line.quantity <= 0 or line.unit_price < 0:
        return SKIP_INVALID
    return None


def is_catalogue_line(line: RetailLine) -> bool:
    """Whether a line describes a product of the catalogue (guest lines included).

    Stock adjustments (quantity <= 0) are left out although they are not cancellations:
    their Description is a note ("damaged", "check", "Unknown"), not a product name, and their
    price is 0, so counting them would corrupt titles and prices. 118 stock codes of the export
    appear only in such adjustments; they are not products.
    """
    return (
        not line.invoice.startswith("C")
        and not is_non_product(line.stock_code)
        and line.quantity > 0
        and line.unit_price >= 0
    )


class LineParser:
    """Parses export lines into :class:`RetailLine`; caches the conversions that repeat
    (an invoice's lines share one date, customers and codes recur)."""

    def __init__(self) -> None:
        self._moments: dict[str, datetime] = {}
        self._customers: dict[str, str] = {}
        self._codes: dict[str, str] = {}

    def __call__(self, line: int, raw: Mapping[str, Any]) -> RetailLine:
        errors: list[FieldError] = []
        invoice = str(raw.get("InvoiceNo") or "").strip()
        if not invoice:
            errors.append(FieldError("InvoiceNo", "this field is required"))
        code = self._stock_code(str(raw.get("StockCode") or ""))
        if not code:
            errors.append(FieldError("StockCode", "this field is required"))
        quantity = self._quantity(raw.get("Quantity"), errors)
        invoiced_at = self._moment(raw.get("InvoiceDate"), errors)
        unit_price = self._price(raw.get("UnitPrice"), errors)
        customer_id = self._customer(raw.get("CustomerID"), errors)
        if errors:
            raise RowError(errors)
        return RetailLine(
            line=line,
            invoice=invoice,
            stock_code=code,
            description=str(raw.get("Description") or "").strip(),
            quantity=quantity,
            invoiced_at=invoiced_at,
            unit_price=unit_price,
            customer_id=customer_id,
            country=str(raw.get("Country") or "").strip(),
        )

    def _stock_code(self, value: str) -> str:
        code = self._codes.get(value)
        if code is None:
            # Interned so that the per-invoice counters share one string per code.
            code = self._codes[value] = value.strip().upper()
        return code

    @staticmethod
    def _quantity(value: Any, errors: list[FieldError]) -> int:
        try:
            return int(value)
        except (TypeError, ValueError):
            errors.append(FieldError("Quantity", f"expected a whole number, got {value!r}"))
            return 0

    @staticmethod
    def _price(value: Any, errors: list[FieldError]) -> Decimal:
        try:
            price = Decimal(str(value).strip())
        except InvalidOperation:
            price = Decimal("NaN")
        if not price.is_finite():
            errors.append(FieldError("UnitPrice", f"not a number: {value!r}"))
            return Decimal(0)
        return price

    def _moment(self, value: Any, errors: list[FieldError]) -> datetime:
        text = str(value or "").strip()
        moment = self._moments.get(text)
        if moment is not None:
            return moment
        try:
            local = datetime.fromisoformat(text)
        except ValueError:
            errors.append(
                FieldError("InvoiceDate", f"expected 'YYYY-MM-DD HH:MM:SS', got {value!r}")
            )
            return datetime.min.replace(tzinfo=UTC)
        if local.tzinfo is None:
            # Wall-clock time in London. In the repeated hour when clocks go back, fold=0
            # picks the first (summer time) occurrence.
            local = local.replace(tzinfo=SHOP_TIME_ZONE)
        moment = self._moments[text] = local.astimezone(UTC)
        return moment

    def _customer(self, value: Any, errors: list[FieldError]) -> str:
        text = str(value or "").strip()
        customer = self._customers.get(text)
        if customer is not None:
            return customer
        if not text:
            return ""
        try:
            number = Decimal(text)
            if number != number.to_integral_value() or number < 0:
                raise ValueError
        except (InvalidOperation, ValueError):
            errors.append(FieldError("CustomerID", f"expected a whole number, got {value!r}"))
            return ""
        customer = self._customers[text] = str(int(number))  # "17850.0" → "17850"
        return customer


@dataclass(slots=True)
class _ProductSeen:
    titles: dict[str, tuple[int, tuple[datetime, int]]]  # title → (count, latest order_key)
    latest: tuple[datetime, int]
    price: Decimal


class CatalogueBuilder:
    """One product per stock code: the most frequent non-empty description as its title (a
    tie goes to the most recently used one) and the unit price of its latest line."""

    def __init__(self) -> None:
        self._products: dict[str, _ProductSeen] = {}

    def add(self, line: RetailLine) -> None:
        key = line.order_key
        seen = self._products.get(line.stock_code)
        if seen is None:
            seen = self._products[line.stock_code] = _ProductSeen({}, key, line.unit_price)
        elif key > seen.latest:
            seen.latest, seen.price = key, line.unit_price
        if line.description:
            count, latest = seen.titles.get(line.description, (0, key))
            seen.titles[line.description] = (count + 1, max(latest, key))

    def __len__(self) -> int:
        return len(self._products)

    def raw_products(self) -> list[tuple[int, dict[str, Any]]]:
        """(latest line, raw values for ``records.parse_product``) per product, by stock code."""
        products = []
        for code in sorted(self._products):
            seen = self._products[code]
            title = max(seen.titles.items(), key=lambda item: item[1])[0] if seen.titles else ""
            raw = {
                "product_id": code,
                "title": title,
                "price": str(seen.price),
                "attributes": dict(SOURCE_ATTRIBUTES),
            }
            products.append((seen.latest[1], raw))
        return products


class CustomerBuilder:
    """One customer per CustomerID, with the country of their most recent imported line."""

    def __init__(self) -> None:
        self._countries: dict[str, tuple[tuple[datetime, int], str]] = {}

    def add(self, line: RetailLine) -> None:
        key = line.order_key
        seen = self._countries.get(line.customer_id)
        if seen is None or key > seen[0]:
            self._countries[line.customer_id] = (key, line.country)

    def __len__(self) -> int:
        return len(self._countries)

    def raw_customers(self) -> list[dict[str, Any]]:
        """Customers as raw values for ``records.parse_customer``, sorted by id."""
        return [
            {"customer_id": customer_id, "attributes": {"country": self._countries[customer_id][1]}}
            for customer_id in sorted(self._countries, key=lambda c: (len(c), c))
        ]


class EventIds:
    """``uci-{InvoiceNo}-{StockCode}-{n}``, n counting earlier lines of the same invoice with the
    same stock code (every line of the invoice counts, imported or not), so the id of a line
    does not depend on which lines the rules skip and a re-import gives the same ids."""

    def __init__(self) -> None:
        self._seen: dict[str, dict[str, int]] = {}

    def next_id(self, line: RetailLine) -> str:
        codes = self._seen.get(line.invoice)
        if codes is None:
            codes = self._seen[line.invoice] = {}
        n = codes.get(line.stock_code, 0)
        codes[line.stock_code] = n + 1
        return f"uci-{line.invoice}-{line.stock_code}-{n}"


def raw_event(line: RetailLine, *, event_id: str) -> dict[str, Any]:
    """An imported line as raw values for ``records.parse_event``: one purchase, the invoice
    being the session (an invoice is one basket)."""
    value = (line.unit_price * line.quantity).quantize(CENT, rounding=ROUND_HALF_UP)
    return {
        "event_id": event_id,
        "customer_id": line.customer_id,
        "product_id": line.stock_code,
        "event_type": EVENT_TYPE,
        "timestamp": line.invoiced_at.isoformat(),
        "quantity": line.quantity,
        "value": str(value),
        "session_id": line.invoice,
    }
