"""Writes the bundled sample the demo runs on: realistic events in the JSON form producers emit.

    python samples/generate.py      # rewrites samples/*.jsonl, deterministically

- predictions.jsonl: a comment-moderation model's predictions (toxic / ok), with ground truth;
- feedback.jsonl: thumbs up/down on a support assistant's answers, with retrieved contexts;
- extractions.jsonl: an LLM's invoice and résumé extractions, valid, fenced, wrong or not JSON;
- review_answers.jsonl: what a careful reviewer answers for each event that may reach review,
  used by the demo's simulated reviewers (a real deployment has people here).

    python samples/generate.py --history 20000 --output PATH   # a larger labelled history

writes instead a long moderation history (`history`): predictions over ten days with their ground
truth, from a model that is overconfident (its scores are sharper than the truth) and noisy, the
history `make quality-demo` routes, reviews and reports on.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

HERE = Path(__file__).resolve().parent
START = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
NAMESPACE = uuid.UUID("6f1c7c52-3c1b-4d8e-9a7e-2d3f1b0c9a11")

FRIENDLY = [
    "Thanks for the detailed write-up, this fixed my build.",
    "Great talk yesterday, the slides are really clear.",
    "I disagree with the conclusion but the data is interesting.",
    "Could you share the config you used for the benchmark?",
    "This is the third time the release notes missed the breaking change.",
    "Honestly the new UI is slower, please bring back the old filters.",
    "Welcome to the team! Ping me if you need access to the staging cluster.",
    "The docs for the retry policy are out of date since 2.3.",
]
HOSTILE = [
    "Only an idiot would ship code like this.",
    "Nobody wants you here, go away.",
    "You people are clueless, this product is garbage and so are you.",
    "Shut up, your opinion is worthless.",
    "What a pathetic excuse for a maintainer.",
]
BORDERLINE = [
    "This is a stupid design decision and you know it.",
    "Are you even reading the issues before closing them?",
    "Typical, another release that breaks everything. Great job.",
    "I can't believe anyone approved this mess.",
]

KNOWLEDGE = [
    ("How do I rotate the API key for a workspace?",
     "Go to Settings → API keys, click Rotate, and update your clients within 24 hours; the old key keeps working until then.",
     "kb-112", "API keys can be rotated from Settings > API keys. After rotation the previous key remains valid for 24 hours."),
    ("What is the maximum file size for uploads?",
     "Uploads are limited to 2 GB per file on every plan.",
     "kb-087", "The upload limit is 500 MB per file on the Starter plan and 5 GB on Business and Enterprise plans."),
    ("Can I export my data as CSV?",
     "Yes: Reports → Export lets you download any table as CSV or Parquet.",
     "kb-045", "Any report table can be exported from Reports > Export in CSV or Parquet format."),
    ("Does the EU region keep data in the EU?",
     "Yes, the EU region stores and processes all customer data in Frankfurt and Dublin.",
     "kb-201", "Customer data in the EU region is stored and processed in Frankfurt and Dublin data centres."),
    ("How long are audit logs retained?",
     "Audit logs are kept for 30 days.",
     "kb-150", "Audit logs are retained for 90 days on Business plans and 400 days on Enterprise plans."),
    ("How do I invite a teammate?",
     "Open Team, click Invite, enter their e-mail address and choose a role.",
     "kb-010", "Invite teammates from the Team page: Invite, e-mail address, role."),
]


def event_id(kind: str, index: int) -> str:
    return str(uuid.uuid5(NAMESPACE, f"{kind}-{index}"))


def at(minutes: float) -> str:
    return (START + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


def predictions(rng: random.Random) -> tuple[list[dict], list[dict]]:
    events, answers = [], []
    for i in range(240):
        roll = rng.random()
        if roll < 0.55:
            text, truth, toxic = rng.choice(FRIENDLY), "ok", rng.betavariate(1.2, 9)
        elif roll < 0.8:
            text, truth, toxic = rng.choice(HOSTILE), "toxic", rng.betavariate(9, 1.3)
        else:
            text, truth, toxic = rng.choice(BORDERLINE), rng.choice(["toxic", "ok"]), rng.uniform(0.35, 0.85)
        toxic = round(min(max(toxic, 0.001), 0.999), 4)
        version = "2.3.1" if i % 3 else "2.4.0-rc1"
        eid = event_id("prediction", i)
        events.append({
            "event_id": eid,
            "occurred_at": at(i * 0.5),
            "source": "comment-service",
            "task": "moderation",
            "model": {"name": "toxicity-bert", "version": version},
            "item": {"id": f"comment-{1000 + i}", "content_type": "text/plain", "text": text,
                     "metadata": {"lang": "en", "channel": rng.choice(["forum", "issues", "chat"])}},
            "scores": {"toxic": toxic, "ok": round(1 - toxic, 4)},
            "trace_id": f"trace-{i:05d}",
            "ground_truth": truth,
        })
        answers.append({"event_id": eid, "kind": "moderation", "label": truth})
    return events, answers


def feedback(rng: random.Random) -> tuple[list[dict], list[dict]]:
    events, answers = [], []
    for i in range(90):
        question, answer, doc, context = KNOWLEDGE[i % len(KNOWLEDGE)]
        wrong = (i % len(KNOWLEDGE)) in (1, 4)
        rating = "down" if wrong and rng.random() < 0.85 else ("down" if rng.random() < 0.08 else "up")
        comment = None
        if rating == "down":
            comment = rng.choice(["That's not what the docs say.", "Wrong limit.", None, "Outdated answer."])
        eid = event_id("feedback", i)
        events.append({
            "event_id": eid,
            "occurred_at": at(i * 1.3),
            "session_id": f"session-{i // 3:04d}",
            "question": question,
            "answer": answer,
            "contexts": [
                {"doc_id": doc, "text": context, "score": round(rng.uniform(0.72, 0.93), 3)},
                {"doc_id": "kb-999", "text": "Release notes for version 4.2.", "score": round(rng.uniform(0.2, 0.4), 3)},
            ],
            "rating": rating,
            "comment": comment,
            "user_id": f"user-{rng.randint(1, 40):03d}",
            "model": {"name": "support-assistant", "version": "2026-10"},
            "prompt_version": "rag-v7",
        })
        verdict = "incorrect" if wrong else "correct"
        answers.append({"event_id": eid, "kind": "rag_answer", "verdict": verdict,
                        "fault": "generation" if wrong else None,
                        "corrected_answer": context if wrong else None})
    return events, answers


SELLERS = [("Nordlicht Software GmbH", "Hafenstraße 12", "Hamburg", "20457", "DE", "DE813456789"),
           ("Atelier Brun SARL", "14 rue des Lilas", "Lyon", "69003", "FR", "FR40123456789")]
BUYERS = [("Kettle & Co Ltd", "22 Mill Lane", "Leeds", "LS1 4AP", "GB"),
          ("Riverbank Analytics BV", "Keizersgracht 220", "Amsterdam", "1016 DZ", "NL")]
PRODUCTS = [("Annual licence, analytics suite", Decimal("1200.00")), ("Onboarding workshop (day)", Decimal("950.00")),
            ("Support hours", Decimal("110.00")), ("Data migration", Decimal("2400.00")), ("Extra seats", Decimal("35.50"))]


def invoice(rng: random.Random, i: int) -> tuple[str, dict]:
    seller, buyer = rng.choice(SELLERS), rng.choice(BUYERS)
    currency = "EUR"
    issue = START.date() - timedelta(days=rng.randint(1, 60))
    lines = []
    for description, price in rng.sample(PRODUCTS, rng.randint(1, 3)):
        quantity = Decimal(rng.randint(1, 12))
        lines.append({"description": description, "quantity": str(quantity),
                      "unit_price": {"amount": str(price), "currency": currency},
                      "amount": {"amount": str(quantity * price), "currency": currency}})
    subtotal = sum(Decimal(line["amount"]["amount"]) for line in lines)
    tax = (subtotal * Decimal("0.19")).quantize(Decimal("0.01"))
    data = {
        "invoice_number": f"INV-2026-{4100 + i}",
        "issue_date": issue.isoformat(),
        "due_date": (issue + timedelta(days=30)).isoformat(),
        "seller": {"name": seller[0], "address": {"street": seller[1], "city": seller[2], "postal_code": seller[3],
                                                  "country": seller[4]}, "vat_id": seller[5]},
        "buyer": {"name": buyer[0], "address": {"street": buyer[1], "city": buyer[2], "postal_code": buyer[3],
                                                "country": buyer[4]}},
        "line_items": lines,
        "subtotal": {"amount": str(subtotal), "currency": currency},
        "tax": {"amount": str(tax), "currency": currency},
        "total": {"amount": str(subtotal + tax), "currency": currency},
    }
    rows = "\n".join(f"  {line['description']:<34} {line['quantity']:>3} x {line['unit_price']['amount']:>8} "
                     f"= {line['amount']['amount']:>9} EUR" for line in lines)
    text = (f"{seller[0]}\n{seller[1]}, {seller[3]} {seller[2]}, {seller[4]} · VAT {seller[5]}\n\n"
            f"INVOICE {data['invoice_number']}\nDate: {issue:%d.%m.%Y}   Due: {issue + timedelta(days=30):%d.%m.%Y}\n"
            f"Bill to: {buyer[0]}, {buyer[1]}, {buyer[3]} {buyer[2]}, {buyer[4]}\n\n{rows}\n\n"
            f"  Subtotal {subtotal} EUR\n  VAT 19% {tax} EUR\n  TOTAL {subtotal + tax} EUR\n")
    return text, data


PEOPLE = [("Amira Haddad", "amira.haddad@example.org", "Berlin", "DE"), ("Tomás Oliveira", "tomas.o@example.com", "Porto", "PT"),
          ("Grace Mwangi", "grace.mwangi@example.net", "Nairobi", "KE")]


def resume(rng: random.Random, i: int) -> tuple[str, dict]:
    name, email, city, country = PEOPLE[i % len(PEOPLE)]
    start = 2015 + rng.randint(0, 4)
    data = {
        "full_name": name,
        "contact": {"email": email, "city": city, "country": country},
        "summary": "Data engineer who builds streaming pipelines and the tooling around them.",
        "experience": [
            {"employer": "Streamline Logistics", "title": "Senior Data Engineer", "start_date": f"{start + 4}-03-01",
             "end_date": None, "highlights": ["Moved batch ETL to Kafka streams", "Cut data latency from hours to seconds"]},
            {"employer": "Fintrail", "title": "Data Engineer", "start_date": f"{start}-09-01",
             "end_date": f"{start + 4}-02-28", "highlights": ["Built the fraud feature store"]},
        ],
        "education": [{"institution": "University of Porto", "degree": "MSc", "field_of_study": "Computer Science",
                       "graduation_date": f"{start}-07-15"}],
        "skills": ["Python", "Kafka", "PostgreSQL", "dbt"],
        "languages": [{"language": "English", "level": "C1"}],
    }
    text = (f"{name} — {city}, {country} — {email}\n\nData engineer who builds streaming pipelines.\n\n"
            f"EXPERIENCE\nSenior Data Engineer, Streamline Logistics, since March {start + 4}\n"
            f"Data Engineer, Fintrail, Sept {start} – Feb {start + 4}\n\nEDUCATION\nMSc Computer Science, "
            f"University of Porto, {start}\n\nSKILLS Python, Kafka, PostgreSQL, dbt · English (C1)\n")
    return text, data


def llm_output(rng: random.Random, schema: str, data: dict) -> str:
    roll = rng.random()
    body = json.dumps(data, ensure_ascii=False)
    if roll < 0.55:
        return body
    if roll < 0.7:
        return f"Here is the extracted {schema}:\n```json\n{json.dumps(data, indent=2, ensure_ascii=False)}\n```"
    broken = json.loads(body)
    if roll < 0.8 and schema == "invoice":
        broken["total"]["amount"] = str(Decimal(broken["total"]["amount"]) + Decimal("100.00"))
        return json.dumps(broken, ensure_ascii=False)
    if roll < 0.88:
        broken.pop("invoice_number" if schema == "invoice" else "full_name", None)
        return json.dumps(broken, ensure_ascii=False)
    if roll < 0.94:
        return body[: len(body) * 2 // 3]
    return f"I could not find a clear {schema} in this document, sorry."


def extractions(rng: random.Random) -> tuple[list[dict], list[dict]]:
    events, answers = [], []
    for i in range(60):
        schema = "invoice" if i % 3 else "resume"
        text, data = invoice(rng, i) if schema == "invoice" else resume(rng, i)
        eid = event_id("extraction", i)
        events.append({
            "event_id": eid,
            "occurred_at": at(i * 2.0),
            "document": {"id": f"doc-{schema}-{i:04d}", "text": text},
            "schema_name": schema,
            "schema_version": "1",
            "raw_output": llm_output(rng, schema, data),
            "model": {"name": "gpt-extract", "version": "2026-09"},
        })
        answers.append({"event_id": eid, "kind": "extraction", "corrected_json": json.dumps(data, ensure_ascii=False)})
    return events, answers


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))


def history(count: int, seed: int = 20261201, days: float = 10.0) -> list[dict]:
    """`count` moderation predictions with ground truth, evenly spread over `days`.

    Each comment has a true probability p of being toxic: most are clearly fine (68 %) or clearly
    toxic (18 %), the rest ambiguous (p uniform in 0.1-0.9); the truth is drawn from p. The model's
    score is logit(p) scaled by 1.2, shifted by 0.3 towards "toxic" and blurred by noise (standard
    deviation 0.8 on the logit): sharper than the truth and biased, so its scores are not the
    error rates they seem (a toxic score of 0.8 is wrong about 7 % of the time, not 20 %).
    """
    rng = random.Random(seed)
    events = []
    for i in range(count):
        roll = rng.random()
        if roll < 0.68:
            p = rng.betavariate(0.6, 40)
        elif roll < 0.86:
            p = rng.betavariate(25, 0.8)
        else:
            p = rng.uniform(0.1, 0.9)
        truth = "toxic" if rng.random() < p else "ok"
        p = min(max(p, 1e-4), 1 - 1e-4)
        logit = 1.2 * math.log(p / (1 - p)) + 0.3 + rng.gauss(0, 0.8)
        toxic = round(min(max(1 / (1 + math.exp(-logit)), 0.0001), 0.9999), 4)
        pool = HOSTILE if truth == "toxic" else FRIENDLY
        text = rng.choice(BORDERLINE if 0.1 < p < 0.9 else pool)
        events.append({
            "event_id": event_id("history", i),
            "occurred_at": at(i * days * 24 * 60 / count),
            "source": "comment-service",
            "task": "moderation",
            "model": {"name": "toxicity-bert", "version": "2.4.0"},
            "item": {"id": f"comment-h{i:06d}", "content_type": "text/plain", "text": text},
            "scores": {"toxic": toxic, "ok": round(1 - toxic, 4)},
            "ground_truth": truth,
        })
    return events


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--history", type=int, help="write a history of this many predictions instead")
    parser.add_argument("--output", type=Path, help="where to write the history (JSON lines)")
    parser.add_argument("--seed", type=int, default=20261201)
    args = parser.parse_args()
    if args.history:
        output = args.output or HERE / "history.jsonl"
        output.parent.mkdir(parents=True, exist_ok=True)
        write_jsonl(output, history(args.history, args.seed))
        return
    rng = random.Random(20261102)
    all_answers: list[dict] = []
    for name, make in (("predictions", predictions), ("feedback", feedback), ("extractions", extractions)):
        events, answers = make(rng)
        write_jsonl(HERE / f"{name}.jsonl", events)
        all_answers.extend(answers)
    write_jsonl(HERE / "review_answers.jsonl", all_answers)


if __name__ == "__main__":
    main()
