"""Framework-free tagging models: zero-shot and supervised tag scoring over vectors.

Modules, each owning one part: :mod:`.taggers` (the zero-shot and supervised taggers, how they
are combined per tag, and the suggestions they make), :mod:`.finetune` (the sentence encoder
fine-tuned on confirmed tags; torch is imported there only), :mod:`.stacking` (the stacked
ensembles: members' probabilities averaged with weights chosen on validation rows, or combined
by a meta-learner, a learned log-linear pool, fitted there),
:mod:`.calibration` (auto-accept thresholds reaching a target precision) and :mod:`.evaluation`
(every method side by side on a labelled catalogue). This package re-exports the public names;
import them from here.
"""

from __future__ import annotations

from .calibration import (
    DEFAULT_TARGET_PRECISION,
    NEVER,
    Thresholds,
    auto_accept_thresholds,
    coverage_at_precision,
    precision_threshold,
)
from .evaluation import (
    ENSEMBLES,
    STACK,
    STACK_LR,
    EncoderVectors,
    EvaluationData,
    classification_metrics,
    evaluate_taggers,
    label_index,
    stratified_split,
    tfidf_lr_fit,
    topk_accuracy,
)
from .finetune import FineTunedTagger
from .stacking import MetaStacker, blend, choose_weights, cross_fit_meta, meta_features
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
    "DEFAULT_TARGET_PRECISION",
    "DEFAULT_TEMPERATURE",
    "ENSEMBLES",
    "NEVER",
    "STACK",
    "STACK_LR",
    "EncoderVectors",
    "EvaluationData",
    "FineTunedTagger",
    "MetaStacker",
    "Suggestion",
    "SupervisedTagger",
    "Thresholds",
    "ZeroShotTagger",
    "auto_accept_thresholds",
    "blend",
    "choose_weights",
    "classification_metrics",
    "combine",
    "coverage_at_precision",
    "cross_fit_meta",
    "evaluate_taggers",
    "f1_per_class",
    "fit_temperature",
    "knn_proba",
    "label_index",
    "meta_features",
    "per_tag_winner",
    "precision_threshold",
    "softmax",
    "stratified_split",
    "suggest",
    "tag_text",
    "tfidf_lr_fit",
    "topk_accuracy",
]
