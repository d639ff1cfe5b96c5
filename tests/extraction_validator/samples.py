"""Documents of the example schemas, as an LLM would extract them, and extraction events carrying them."""

from __future__ import annotations

import copy
import json
import uuid
from datetime import UTC, datetime
from typing import Any

from workers.contracts import Document, Extraction, ModelInfo

INVOICE: dict[str, Any] = {
    "invoice_number": "INV-2025-0042",
    "issue_date": "2025-03-01",
    "due_date": "2025-03-31",
    "seller": {
        "name": "Nordlicht Software GmbH",
        "address": {"street": "Hafenstraße 12", "city": "Hamburg", "postal_code": "20457", "country": "DE"},
        "vat_id": "DE123456789",
    },
    "buyer": {
        "name": "Acme Corp",
        "address": {"street": "1 Main St", "city": "Springfield", "country": "US"},
    },
    "line_items": [
        {
            "description": "Consulting, March",
            "quantity": "10",
            "unit_price": {"amount": "120.00", "currency": "EUR"},
            "amount": {"amount": "1200.00", "currency": "EUR"},
        },
        {
            "description": "Licence seats",
            "quantity": 3,
            "unit_price": {"amount": 49.99, "currency": "EUR"},
            "amount": {"amount": 149.97, "currency": "EUR"},
        },
        {
            "description": "Travel expenses",
            "quantity": "1.5",
            "unit_price": {"amount": "80.10", "currency": "EUR"},
            "amount": {"amount": "120.15", "currency": "EUR"},
        },
    ],
    "subtotal": {"amount": "1470.12", "currency": "EUR"},
    "tax": {"amount": "279.32", "currency": "EUR"},
    "total": {"amount": "1749.44", "currency": "EUR"},
}

RESUME: dict[str, Any] = {
    "full_name": "Ada Lovelace",
    "contact": {"email": "ada@example.org", "phone": "+44 20 7946 0958", "city": "London", "country": "GB"},
    "summary": "Mathematician with a focus on analytical engines.",
    "experience": [
        {
            "employer": "Analytical Engines Ltd",
            "title": "Lead Programmer",
            "start_date": "2019-04-01",
            "end_date": "2023-06-30",
            "highlights": ["Wrote the first published algorithm", "Led a team of 4"],
        },
        {"employer": "Babbage & Co", "title": "Principal Engineer", "start_date": "2023-07-01"},
    ],
    "education": [{"institution": "University of London", "degree": "BSc", "field_of_study": "Mathematics"}],
    "skills": ["Python", "Kafka", "Mathematics"],
    "languages": [{"language": "English", "level": "native"}, {"language": "French", "level": "B2"}],
    "desired_salary": {"amount": "95000.00", "currency": "GBP"},
}


def invoice(**changes: Any) -> dict[str, Any]:
    document = copy.deepcopy(INVOICE)
    document.update(changes)
    return document


def resume(**changes: Any) -> dict[str, Any]:
    document = copy.deepcopy(RESUME)
    document.update(changes)
    return document


def dumps(document: Any) -> str:
    return json.dumps(document, ensure_ascii=False, indent=2)


def extraction(schema_name: str, raw_output: str, schema_version: str = "1", index: int = 0) -> Extraction:
    return Extraction(
        event_id=uuid.uuid4(),
        occurred_at=datetime(2025, 3, 2, 8, 30, tzinfo=UTC),
        document=Document(
            id=f"{schema_name}-{index}.pdf", text=f"the text of {schema_name} document {index}"
        ),
        schema_name=schema_name,
        schema_version=schema_version,
        raw_output=raw_output,
        model=ModelInfo(name="extractor-llm", version="2025-02"),
    )
