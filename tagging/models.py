"""Tag vocabulary and product tag suggestions (auto-tagging issue).

A ``Tag`` is one label of the merchant's vocabulary; its ``name`` is the full path of the
hierarchy (``"dairy eggs/yogurt"``), so a name is unique on its own and the ``parent`` link only
makes the tree walkable. A ``ProductTag`` links a product to a tag: suggested by a model (pending),
then accepted or rejected by a merchant, or set directly by a merchant or an import.
"""

from django.conf import settings
from django.db import models


class TaggingJobKind(models.TextChoices):
    """tagging's job kind, registered with the jobs app by ``TaggingConfig.ready``."""

    TAG = "tag", "Auto-tag products"


class Tag(models.Model):
    """One tag of the vocabulary. ``name`` is the whole path (``parent name/leaf``)."""

    name = models.CharField(
        max_length=255, unique=True, help_text='Full path, e.g. "dairy eggs/yogurt".'
    )
    description = models.TextField(
        blank=True,
        default="",
        help_text="Embedded with the name for zero-shot tagging; say what belongs here.",
    )
    parent = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        # Deleting a branch deletes its leaves: a leaf's name carries the parent's path.
        on_delete=models.CASCADE,
        related_name="children",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=~models.Q(name=""), name="tag_name_not_empty"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def leaf(self) -> str:
        """The last segment of the path (``"yogurt"`` for ``"dairy eggs/yogurt"``)."""
        return self.name.rsplit("/", 1)[-1]


class ProductTagStatus(models.TextChoices):
    PENDING = "pending", "Pending review"
    ACCEPTED = "accepted", "Accepted"
    REJECTED = "rejected", "Rejected"


class ProductTagSource(models.TextChoices):
    ZERO_SHOT = "zero_shot", "Zero-shot (tag text vs product text)"
    SUPERVISED = "supervised", "Supervised (learned from reviewed tags)"
    MERCHANT = "merchant", "Set by a merchant"
    IMPORT = "import", "Imported from a catalogue column"


class ProductTag(models.Model):
    """A tag on a product, with where it came from and whether a merchant confirmed it.

    Auto-tagging writes ``pending`` rows, or ``accepted`` ones marked ``decided_by_model`` when
    their confidence reaches the tag's auto-accept threshold, and never touches a row a merchant
    decided (``accepted``/``rejected``): the decision is the training signal and the merchant's
    word.
    """

    product = models.ForeignKey(
        "recommender.Product", on_delete=models.CASCADE, related_name="product_tags"
    )
    tag = models.ForeignKey(Tag, on_delete=models.CASCADE, related_name="product_tags")
    status = models.CharField(
        max_length=16, choices=ProductTagStatus.choices, default=ProductTagStatus.PENDING
    )
    source = models.CharField(max_length=16, choices=ProductTagSource.choices)
    confidence = models.FloatField(
        null=True, blank=True, help_text="Model confidence in [0, 1]; empty for merchant tags."
    )
    model_version = models.CharField(max_length=128, blank=True, default="")
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    # Auto-accept (docs/tagging.md#auto-accept): a run accepted the suggestion because its
    # confidence reached the tag's calibrated threshold. ``decided_by_model`` says the current
    # status is the run's (a later run may revise it); a merchant's decision clears it and is
    # final. ``auto_accepted`` stays set after a merchant's decision, so the share of
    # auto-accepted rows merchants kept measures auto-accept's precision.
    auto_accepted = models.BooleanField(default=False)
    decided_by_model = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-confidence", "id"]
        indexes = [
            # The review queue: pending suggestions by confidence, optionally of one tag.
            models.Index(fields=["status", "-confidence"], name="producttag_status_conf"),
            models.Index(fields=["tag", "status"], name="producttag_tag_status"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["product", "tag"], name="producttag_unique"),
            models.CheckConstraint(
                condition=models.Q(confidence__isnull=True)
                | (models.Q(confidence__gte=0) & models.Q(confidence__lte=1)),
                name="producttag_confidence_0_1",
            ),
            # A pending row has no decision; a decided row says when it was decided.
            models.CheckConstraint(
                condition=models.Q(status="pending", decided_at__isnull=True)
                | (~models.Q(status="pending") & models.Q(decided_at__isnull=False)),
                name="producttag_decided_iff_not_pending",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.tag.name} on {self.product_id} ({self.status})"


class TaggingVector(models.Model):
    """A product's vector from the tagging encoder, kept only when that encoder differs from
    the index's (``RECSITE_TAGGING_MODEL``); otherwise tagging reads the index's stored
    embeddings. ``text_hash`` covers (model, text), so a new model or text re-embeds."""

    product = models.OneToOneField(
        "recommender.Product", on_delete=models.CASCADE, related_name="tagging_vector"
    )
    model_name = models.CharField(max_length=255)
    text_hash = models.CharField(max_length=64)
    dimension = models.PositiveIntegerField()
    vector = models.BinaryField()
    updated_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.model_name} vector of {self.product_id}"
