"""Two example extraction schemas, registered on import: an invoice and a résumé.

They show what a schema can ask of an LLM's output: nested objects and lists, ISO-8601 dates,
money as a decimal amount with an ISO 4217 currency code, enumerated values, and rules across
fields (a line's amount is its quantity times its unit price, the totals add up, a job ends after
it starts). Unknown fields are errors, so that invented fields reach a reviewer rather than the
training data. Copy them as a starting point for schemas of your own (see `registry`).
"""

from __future__ import annotations

from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from workers.extraction_validator.registry import extraction_schema

CENT = Decimal("0.01")

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]
CurrencyCode = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
"""An ISO 4217 alphabetic code: three capital letters, such as EUR or USD."""
CountryCode = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")]
"""An ISO 3166-1 alpha-2 code: two capital letters, such as DE or US."""
EmailAddress = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]
PhoneNumber = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^\+?[0-9][0-9 ()./-]{5,24}$")]


class Schema(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Money(Schema):
    """An amount of money; amounts are never negative here (a credit note would be a schema of its own)."""

    amount: Annotated[Decimal, Field(ge=0, max_digits=14, decimal_places=2)]
    currency: CurrencyCode


# -- invoice ---------------------------------------------------------------------------------------


class Address(Schema):
    street: Text
    city: Text
    postal_code: Text | None = None
    country: CountryCode


class Party(Schema):
    name: Text
    address: Address | None = None
    vat_id: Text | None = None


class LineItem(Schema):
    description: Text
    quantity: Annotated[Decimal, Field(gt=0, max_digits=12, decimal_places=4)]
    unit_price: Money
    amount: Money

    @model_validator(mode="after")
    def _amount_is_quantity_times_unit_price(self) -> Self:
        if self.amount.currency != self.unit_price.currency:
            raise ValueError(
                f"amount is in {self.amount.currency}, the unit price in {self.unit_price.currency}"
            )
        expected = (self.quantity * self.unit_price.amount).quantize(CENT, ROUND_HALF_UP)
        if self.amount.amount != expected:
            raise ValueError(
                f"amount {self.amount.amount} is not quantity times unit price "
                f"({self.quantity} * {self.unit_price.amount} = {expected})"
            )
        return self


@extraction_schema("invoice", "1")
class Invoice(Schema):
    invoice_number: Text
    issue_date: date
    due_date: date | None = None
    seller: Party
    buyer: Party
    line_items: Annotated[list[LineItem], Field(min_length=1, max_length=500)]
    subtotal: Money
    tax: Money | None = None
    total: Money

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.due_date is not None and self.due_date < self.issue_date:
            raise ValueError(f"due date {self.due_date} is before the issue date {self.issue_date}")
        amounts = [item.amount for item in self.line_items] + [self.subtotal, self.total]
        currencies = sorted({money.currency for money in [*amounts, *([self.tax] if self.tax else [])]})
        if len(currencies) > 1:
            raise ValueError(f"the invoice mixes currencies: {', '.join(currencies)}")
        line_sum = sum((item.amount.amount for item in self.line_items), Decimal(0))
        if self.subtotal.amount != line_sum:
            raise ValueError(
                f"subtotal {self.subtotal.amount} is not the sum of the line amounts ({line_sum})"
            )
        expected_total = self.subtotal.amount + (self.tax.amount if self.tax else Decimal(0))
        if self.total.amount != expected_total:
            raise ValueError(f"total {self.total.amount} is not subtotal plus tax ({expected_total})")
        return self


# -- résumé ----------------------------------------------------------------------------------------


class Contact(Schema):
    email: EmailAddress | None = None
    phone: PhoneNumber | None = None
    city: Text | None = None
    country: CountryCode | None = None


class Position(Schema):
    employer: Text
    title: Text
    start_date: date
    end_date: date | None = Field(None, description="empty for the current position")
    highlights: list[Text] = Field(default_factory=list, max_length=30)

    @model_validator(mode="after")
    def _ends_after_it_starts(self) -> Self:
        if self.end_date is not None and self.end_date < self.start_date:
            raise ValueError(f"end date {self.end_date} is before the start date {self.start_date}")
        return self


class Education(Schema):
    institution: Text
    degree: Text
    field_of_study: Text | None = None
    graduation_date: date | None = None


class Language(Schema):
    language: Text
    level: Literal["A1", "A2", "B1", "B2", "C1", "C2", "native"] = Field(description="CEFR level, or native")


@extraction_schema("resume", "1")
class Resume(Schema):
    full_name: Text
    contact: Contact
    summary: Text | None = None
    experience: list[Position] = Field(default_factory=list, max_length=100)
    education: list[Education] = Field(default_factory=list, max_length=50)
    skills: list[Text] = Field(default_factory=list, max_length=200)
    languages: list[Language] = Field(default_factory=list, max_length=50)
    desired_salary: Money | None = Field(None, description="per year")
