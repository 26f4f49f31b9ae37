"""Framework-free tagging models: zero-shot and supervised tag scoring over vectors.

Modules, each owning one part: :mod:`.taggers` (the zero-shot and supervised taggers, how they
are combined per tag, and the suggestions they make), :mod:`.finetune` (the sentence encoder
fine-tuned on confirmed tags; torch is imported there only) and :mod:`.evaluation` (every
method side by side on a labelled catalogue). This package re-exports the public names; import
them from here.
"""

from __future__ import annotations

from .evaluation import (
    ENSEMBLES,
    EvaluationData,
    classification_metrics,
    evaluate_taggers,
    label_index,
    stratified_split,
    tfidf_lr_fit,
    topk_accuracy,
)
from .finetune import FineTunedTagger
from .taggers import (
    BACKGROUND,
    DEFAULT_TEMPERATURE,
    Suggestion,
    SupervisedTagger,
    ZeroShotTagger,
    combine,
    f1_per_class,
    fit_temperature,
    knn_proba,
    per_tag_winner,
    softmax,
    suggest,
    tag_text,
)

__all__ = [
    "BACKGROUND",
    "DEFAULT_TEMPERATURE",
    "ENSEMBLES",
    "EvaluationData",
    "FineTunedTagger",
    "Suggestion",
    "SupervisedTagger",
    "ZeroShotTagger",
    "classification_metrics",
    "combine",
    "evaluate_taggers",
    "f1_per_class",
    "fit_temperature",
    "knn_proba",
    "label_index",
    "per_tag_winner",
    "softmax",
    "stratified_split",
    "suggest",
    "tag_text",
    "tfidf_lr_fit",
    "topk_accuracy",
]
