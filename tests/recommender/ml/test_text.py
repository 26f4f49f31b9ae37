"""The product embedding text template and its hash."""

import hashlib

import pytest

from recommender.ml.text import (
    DEFAULT_TEMPLATE,
    EmbeddingTextTemplate,
    embedding_text_hash,
    product_embedding_text,
)


def test_default_template_joins_every_field_in_order():
    text = product_embedding_text(
        title="HP 78 Tri-Color Printer Cartridge (C6578DN)",
        category="Office/Printer ink",
        brand="HP",
        tags=["ink", "colour"],
        description="Prints up to 560 pages.",
    )

    assert text == (
        "HP 78 Tri-Color Printer Cartridge (C6578DN). Office/Printer ink. HP. ink, colour. "
        "Prints up to 560 pages."
    )


def test_empty_fields_are_skipped_with_their_separators():
    text = product_embedding_text(
        title="WHITE HANGING HEART T-LIGHT HOLDER", category="", brand="", tags=[], description=""
    )

    assert text == "WHITE HANGING HEART T-LIGHT HOLDER"


def test_a_gap_in_the_middle_leaves_one_separator():
    text = product_embedding_text(
        title="Artisan Baguette", category="bakery/bread", brand="", tags=["", "  "], description=""
    )

    assert text == "Artisan Baguette. bakery/bread"


def test_whitespace_is_collapsed_and_empty_tags_dropped():
    text = product_embedding_text(
        title="  Shoulder   bag ",
        category="Bag",
        brand="",
        tags=[" Beige ", "", "Ladies\taccessories"],
        description="Shoulder bag in grained\nimitation leather.\n",
    )

    assert text == (
        "Shoulder bag. Bag. Beige, Ladies accessories. Shoulder bag in grained imitation leather."
    )


def test_a_field_ending_a_sentence_does_not_double_the_full_stop():
    text = product_embedding_text(title="Mug.", category="Kitchen!", brand="Acme")

    assert text == "Mug. Kitchen! Acme"


def test_description_is_cut_at_a_word_boundary():
    text = product_embedding_text(
        title="Set",
        description="Set with a shirt and pair of shorts in a cotton weave.",
        max_description_chars=24,
    )

    # The 24th character falls inside "pair"; the cut goes back to the previous space.
    assert text == "Set. Set with a shirt and"


def test_description_cut_drops_a_trailing_comma():
    text = product_embedding_text(
        title="Top", description="Lined cups, wide straps", max_description_chars=11
    )

    assert text == "Top. Lined cups"


def test_description_cut_on_a_space_keeps_the_whole_word():
    text = product_embedding_text(
        title="Top", description="Lined cups and straps", max_description_chars=10
    )

    assert text == "Top. Lined cups"


def test_a_single_long_word_is_cut_hard():
    text = product_embedding_text(title="Top", description="Abcdefghij", max_description_chars=4)

    assert text == "Top. Abcd"


def test_no_description_limit():
    description = "word " * 400

    text = product_embedding_text(title="T", description=description, max_description_chars=None)

    assert text == "T. " + description.strip()


def test_custom_template_keeps_prefix_and_suffix():
    template = "Product: {title} by {brand}."

    assert product_embedding_text(title="Mug", brand="Acme", template=template) == (
        "Product: Mug by Acme."
    )
    assert product_embedding_text(title="Mug", template=template) == "Product: Mug."
    assert product_embedding_text(title="Mug!", template=template) == "Product: Mug!"


def test_template_object_renders_like_the_function():
    template = EmbeddingTextTemplate(template="{brand}: {title}", max_description_chars=50)

    assert template.render(title="Mug", brand="Acme") == "Acme: Mug"
    assert template.render(title="Mug") == "Mug"
    assert template.template == "{brand}: {title}"


def test_all_fields_empty_gives_an_empty_text():
    assert product_embedding_text(title=" ", template=DEFAULT_TEMPLATE) == ""


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{title} {colour}", "unknown field {colour}; allowed fields are title, category, brand"),
        ("{title!r}", "field {title} must not have a format spec or conversion"),
        ("{title:>10}", "field {title} must not have a format spec or conversion"),
        ("{title} {title}", "field {title} appears more than once"),
        ("just text", "names no field"),
        ("{title", "expected '}' before end of string"),
    ],
)
def test_bad_templates_are_refused_with_the_reason(template, message):
    with pytest.raises(ValueError, match="template") as excinfo:
        EmbeddingTextTemplate(template=template)

    assert message in str(excinfo.value)


@pytest.mark.parametrize("limit", [0, -5, 2.5, True])
def test_bad_description_limits_are_refused(limit):
    with pytest.raises(ValueError, match=r"max_description_chars: must be a positive integer"):
        EmbeddingTextTemplate(max_description_chars=limit)


def test_tags_given_as_one_string_are_refused():
    with pytest.raises(TypeError, match="tags: expected a list of strings"):
        product_embedding_text(title="Mug", tags="red|blue")


def test_text_hash_is_sha256_of_model_name_and_text():
    digest = embedding_text_hash("Mug. Acme", "all-MiniLM-L6-v2")

    assert digest == hashlib.sha256(b"all-MiniLM-L6-v2\x00Mug. Acme").hexdigest()
    # Pinned: stored hashes depend on it, and a change would re-embed every product.
    assert digest == "f8e35a05f895895e800ba436f414e848b986fce1ed1cd235865017772fa38819"


def test_text_hash_changes_with_the_text_and_with_the_model():
    base = embedding_text_hash("Mug", "all-MiniLM-L6-v2")

    assert embedding_text_hash("Mug", "all-MiniLM-L6-v2") == base
    assert embedding_text_hash("Mug.", "all-MiniLM-L6-v2") != base
    assert embedding_text_hash("Mug", "hashing-v1-64") != base
    # The separator keeps the boundary between model name and text unambiguous.
    assert embedding_text_hash("bc", "a") != embedding_text_hash("c", "ab")
