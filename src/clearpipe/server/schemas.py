"""Request and response models of the HTTP API, used for validation and the OpenAPI page.

Responses are built from `Predictions.to_output`, the output contract of `clearpipe.postprocess`;
the models here only describe that contract for `/docs`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    WithJsonSchema,
)

_TEXT = {"type": "string"}
_PAIR_ARRAY = {"type": "array", "items": _TEXT, "minItems": 2, "maxItems": 2}
_PAIR_OBJECT = {
    "type": "object",
    "properties": {"text": _TEXT, "text_pair": _TEXT},
    "required": ["text"],
    "additionalProperties": False,
}
# `inputs` is checked by `clearpipe.inputs.normalize_inputs`, as in the Python API, so that its
# errors name the bad item; this schema only documents the accepted shapes.
Inputs = Annotated[
    Any,
    WithJsonSchema(
        {
            "anyOf": [
                _TEXT,
                _PAIR_OBJECT,
                {"type": "array", "items": {"anyOf": [_TEXT, _PAIR_ARRAY, _PAIR_OBJECT]}},
            ]
        }
    ),
]


class ClassifyRequest(BaseModel):
    """Body of `POST /classify`.

    Leaving `top_k` out returns one best `{"label", "score"}` per input; `top_k: k` the k best;
    `top_k: null` every label. `function_to_apply` overrides the model's default activation.
    `min_score` adds `"decided"` to every result (false: the model is not sure).
    """

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"inputs": ["I love this movie!", "What a waste of time."]}]},
    )

    inputs: Inputs = Field(
        description='A text, a list of texts, or a list of [text, text_pair] pairs or {"text", "text_pair"} objects.'
    )
    top_k: StrictInt | None = Field(
        default=None, ge=1, description="How many labels per input; null for all."
    )
    function_to_apply: Literal["softmax", "sigmoid", "none"] | None = Field(
        default=None, description="Activation over the logits; default: the model's."
    )
    long_text: Literal["truncate", "chunk"] | None = Field(
        default=None,
        description='Inputs over the model\'s max length: "truncate", or "chunk" (classify overlapping '
        'windows and average their probabilities; each result then carries "windows"). '
        "Default: the server's --long-text.",
    )
    min_score: StrictFloat | None = Field(
        default=None,
        ge=0.0,
        le=1.0,
        description='Results whose score is below it get "decided": false (abstention), those at or '
        'above it "decided": true; single-label models. Default: the server\'s --min-score, else none.',
    )
    aggregation_strategy: StrictStr | None = Field(
        default=None,
        description="NER models: how tokens become entities, as transformers' aggregation_strategy: "
        '"none", "simple", "first", "average", "max", or clearpipe\'s "word" (the default: whole words, '
        "never split between two entities).",
    )
    ignore_labels: list[StrictStr] | None = Field(
        default=None,
        description='NER models: labels dropped after grouping (default ["O"]; [] keeps the O stretches).',
    )


class ExplainRequest(BaseModel):
    """Body of `POST /explain`: one text (and optional pair) to trace through the three stages."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"text": "A gripping, funny film."}]}
    )

    text: StrictStr
    text_pair: StrictStr | None = None


class LabelScore(BaseModel):
    label: str
    score: float
    windows: int | None = Field(default=None, description='With long_text "chunk": windows classified.')
    applies: bool | None = Field(
        default=None, description="Multi-label models: the score reaches this label's saved threshold."
    )
    decided: bool | None = Field(default=None, description="With min_score: the score reaches it.")


ClassifyResponse = LabelScore | list[LabelScore] | list[list[LabelScore]]


class ZeroShotRequest(BaseModel):
    """Body of `POST /classify` on a zero-shot server (`clearpipe serve --zero-shot`): transformers'
    zero-shot call. Labels are checked as the Python API checks them (`clearpipe.zeroshot.labels`);
    `"name=description"` gives a label a description, which the encoder reads instead of the name.
    """

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"inputs": "The striker scored twice.", "candidate_labels": ["sports", "politics"]}]
        },
    )

    inputs: StrictStr | list[StrictStr] = Field(description="A text or a list of texts.")
    candidate_labels: StrictStr | list[StrictStr] = Field(
        description='The labels: a list, or one comma-separated string ("sports,politics").'
    )
    hypothesis_template: StrictStr | None = Field(
        default=None,
        description='The label prompt, with {} for the label. Default: the model\'s ("The topic is {}." '
        'for a sentence encoder, "This example is {}." for an NLI model).',
    )
    multi_label: StrictBool = Field(
        default=False,
        description="Score each label on its own (several may apply); one label is then enough.",
    )


class ZeroShotAnswer(BaseModel):
    """One text's answer: its labels from most to least likely, and their scores."""

    sequence: str
    labels: list[str]
    scores: list[float]


ZeroShotResponse = ZeroShotAnswer | list[ZeroShotAnswer]


class EmbedRequest(BaseModel):
    """Body of `POST /embed`: texts to embed with the zero-shot server's sentence encoder."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"texts": ["a cat", "a kitten"]}]}
    )

    texts: list[StrictStr]


class EmbedResponse(BaseModel):
    """One unit-length, mean-pooled embedding per text, in order; a dot product is a cosine."""

    embeddings: list[list[float]]
    dim: int
    model: str


class ZeroShotInfo(BaseModel):
    model: str
    kind: Literal["similarity", "nli"]
    template: str
    max_length: int
    dtype: str
    device: str
    version: str
    embed: bool
    limits: dict[str, int | float]


class ErrorResponse(BaseModel):
    """Every 4xx/5xx answer: a message a person can act on, and a machine-readable type."""

    error: str
    type: str


class Info(BaseModel):
    model: str
    task: str
    """"text-classification", or "token-classification" for a NER model."""
    labels: list[str]
    max_length: int
    dtype: str
    device: str
    version: str
    function_to_apply: str
    long_text: list[str]
    calibration: dict[str, str | float] | None = None
    thresholds: dict[str, float] | None = None
    min_score: float | None = None
    limits: dict[str, int | float]
