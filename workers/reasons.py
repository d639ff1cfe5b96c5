"""Every reason a message can be dead-lettered for: the one registry, listed in the README.

A reason is a short stable code, carried by `RejectedEvent.reason`, the `hitl.dlq.reason` header
and the `hitl_dead_letters_total{reason}` metric; the message beside it says what exactly is wrong.
"""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    # Decoding (every worker's input)
    EMPTY_VALUE = "empty_value"
    TOO_LARGE = "too_large"
    UNSUPPORTED_CONTENT_TYPE = "unsupported_content_type"
    NOT_JSON_OR_AVRO = "not_json_or_avro"
    INVALID_UTF8 = "invalid_utf8"
    INVALID_JSON = "invalid_json"
    UNKNOWN_FINGERPRINT = "unknown_fingerprint"
    TRUNCATED_AVRO = "truncated_avro"
    INVALID_AVRO = "invalid_avro"
    WRONG_EVENT_TYPE = "wrong_event_type"
    SCHEMA_MISMATCH = "schema_mismatch"
    INVALID_VALUE = "invalid_value"
    # The runtime
    INVALID_HEADERS = "invalid_headers"
    HANDLER_ERROR = "handler_error"
    UNDECLARED_OUTPUT = "undeclared_output"
    OUTPUT_INVALID = "output_invalid"
    OUTPUT_TOO_LARGE = "output_too_large"
    OUTPUT_REFUSED = "output_refused"
    # band-router
    NO_SCORES = "no_scores"
    SCORE_NOT_A_NUMBER = "score_not_a_number"
    SCORE_OUT_OF_RANGE = "score_out_of_range"
    UNKNOWN_TASK = "unknown_task"
    # extraction-validator
    UNKNOWN_SCHEMA = "unknown_schema"
    # Sinks
    DATABASE_REFUSED = "database_refused"
    ARGILLA_REJECTED = "argilla_rejected"
    LABEL_STUDIO_REJECTED = "label_studio_rejected"
    # argilla-collector (on hitl.review.resolved.dlq)
    UNREADABLE_RECORD = "unreadable_record"
    RESOLUTION_FAILED = "resolution_failed"
    REFUSED_BY_KAFKA = "refused_by_kafka"


DECODING = frozenset(
    {
        Reason.EMPTY_VALUE,
        Reason.TOO_LARGE,
        Reason.UNSUPPORTED_CONTENT_TYPE,
        Reason.NOT_JSON_OR_AVRO,
        Reason.INVALID_UTF8,
        Reason.INVALID_JSON,
        Reason.UNKNOWN_FINGERPRINT,
        Reason.TRUNCATED_AVRO,
        Reason.INVALID_AVRO,
        Reason.WRONG_EVENT_TYPE,
        Reason.SCHEMA_MISMATCH,
        Reason.INVALID_VALUE,
    }
)
"""The reasons the codec gives (`DecodeError.reason`), whichever worker decodes."""

DESCRIPTIONS: dict[Reason, str] = {
    Reason.EMPTY_VALUE: "the message has no value",
    Reason.TOO_LARGE: "the value is larger than HITL_RUNTIME__MAX_VALUE_BYTES",
    Reason.UNSUPPORTED_CONTENT_TYPE: "the content-type header is neither JSON nor Avro",
    Reason.NOT_JSON_OR_AVRO: "without a content type, the value is neither JSON nor single-object Avro",
    Reason.INVALID_UTF8: "JSON that is not UTF-8",
    Reason.INVALID_JSON: "JSON that does not parse",
    Reason.UNKNOWN_FINGERPRINT: "Avro written with a schema this version does not know",
    Reason.TRUNCATED_AVRO: "Avro cut short",
    Reason.INVALID_AVRO: "Avro bytes that do not decode with their schema",
    Reason.WRONG_EVENT_TYPE: "a valid event of another type than the worker reads",
    Reason.SCHEMA_MISMATCH: "fields missing, unknown or of the wrong type (every failing field's path)",
    Reason.INVALID_VALUE: "a value that breaks a rule of the contract (NaN, a score outside [0, 1])",
    Reason.INVALID_HEADERS: "headers the client cannot read (a header key that is not UTF-8)",
    Reason.HANDLER_ERROR: "the handler raised an unexpected exception (a bug; its traceback is logged)",
    Reason.UNDECLARED_OUTPUT: "the handler made an event whose type the worker does not declare (a bug)",
    Reason.OUTPUT_INVALID: "an output does not fit its Avro schema (a bug)",
    Reason.OUTPUT_TOO_LARGE: "an output is larger than HITL_RUNTIME__MAX_OUTPUT_BYTES",
    Reason.OUTPUT_REFUSED: "Kafka refused an output for what it is (too large for the topic)",
    Reason.NO_SCORES: "a prediction without scores",
    Reason.SCORE_NOT_A_NUMBER: "a score that is NaN",
    Reason.SCORE_OUT_OF_RANGE: "a score outside [0, 1]",
    Reason.UNKNOWN_TASK: "a prediction whose task has no band policy",
    Reason.UNKNOWN_SCHEMA: "an extraction naming a schema (or version) no configured module registers",
    Reason.DATABASE_REFUSED: "PostgreSQL refused the event's row (a constraint, a value it cannot hold)",
    Reason.ARGILLA_REJECTED: "Argilla refused the review task's record for its content",
    Reason.LABEL_STUDIO_REJECTED: "Label Studio refused the review task for its content",
    Reason.UNREADABLE_RECORD: "an item of the review tool that does not carry the task it was published from",
    Reason.RESOLUTION_FAILED: "the record's answers could not be turned into a resolution",
    Reason.REFUSED_BY_KAFKA: "Kafka refused the resolution for what it is (too large for the topic)",
}
