"""The catalogue of event types: every model that is the value of a Kafka message."""

from workers.contracts.base import Event
from workers.contracts.outputs import Decision, TrainingExample
from workers.contracts.review import ReviewResolution, ReviewTask
from workers.contracts.sources import Extraction, Feedback, Prediction
from workers.contracts.validated import ValidExtraction

EVENT_TYPES: tuple[type[Event], ...] = (
    Prediction,
    Feedback,
    Extraction,
    ReviewTask,
    ReviewResolution,
    Decision,
    TrainingExample,
    ValidExtraction,
)
