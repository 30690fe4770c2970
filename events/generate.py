#!/usr/bin/env python3
"""Writes the sample Lambda events in this folder (see README.md).

The files are committed; run this only after changing a sample here, from anywhere:

    python3 events/generate.py

It signs the Coupa webhook body (HMAC-SHA256, key WEBHOOK_SECRET, hex with `sha256=`) and derives the
SQS FIFO group and deduplication ids the way `shared/src/ports/queue.rs::dedup_id` and
`shared/src/steps/messages.rs` do. Standard library only. `cargo test -p mlc-infra` checks the
result (signature, ids, md5 of bodies, shapes).
"""

import hashlib
import hmac
import json
import os
from datetime import datetime, timezone

HERE = os.path.dirname(os.path.abspath(__file__))

# The VALUE of the secret named `coupa-webhook-secret` in the configuration, as the handler
# tests provide it. A sample, not a real secret.
WEBHOOK_SECRET = b"coupa-webhook-secret"

# The VALUE of the secret named by `sync.notifications.client_state_secret` (the handler tests
# call it `bc-client-state`): the `clientState` of the BC subscriptions, which BC sends back in
# every notification. A sample, not a real secret; at most 50 characters (business-central.md A8).
BC_CLIENT_STATE = "mlc-sample-client-state"
BC_COMPANY = "f64eba74-dacd-4854-a584-1834f68cfc3a"

REGION = "us-east-1"
ACCOUNT = "123456789012"
STACK = "ml-connector"
INTEGRATION = "coupa-bc"
API_ID = "a1b2c3d4e5"


def dedup_id(parts):
    """Mirror of shared/src/ports/queue.rs::dedup_id."""
    raw = "-".join(parts)
    clean = "".join(c if (c.isascii() and c.isalnum()) or c in "-_." else "_" for c in raw)
    if len(clean) <= 128:
        return clean
    return clean[:63] + "-" + hashlib.sha256(raw.encode()).hexdigest()[:64]


def compact(obj):
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def write(name, obj):
    with open(os.path.join(HERE, name), "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, ensure_ascii=False)
        f.write("\n")


def epoch_ms(rfc3339):
    return int(datetime.fromisoformat(rfc3339).timestamp() * 1000)


# ----------------------------------------------------------------------------- webhook

# A Coupa approved invoice as the webhook sends it (shared/apis/coupa.md §1.6, example A).
COUPA_INVOICE = {
    "id": 92010,
    "created-at": "2024-04-01T02:16:48+03:00",
    "updated-at": "2024-04-01T02:19:09+03:00",
    "invoice-date": "2024-04-01T00:00:00+03:00",
    "invoice-number": "Test 10",
    "line-level-taxation": False,
    "status": "approved",
    "total-with-taxes": "100.00",
    "gross-total": "100.00",
    "supplier-total": "100.00",
    "tax-rate": None,
    "tax-amount": "0.00",
    "payment-date": None,
    "payment-notes": None,
    "exported": False,
    "last-exported-at": None,
    "document-type": "Invoice",
    "is-credit-note": False,
    "line-count": 1,
    "currency": {"id": 1, "code": "USD"},
    "payment-term": {"id": 2, "code": "10 Days Net", "description": "10"},
    "supplier": {"id": 8819, "name": "Acme Office Leasing", "number": "SUP-001"},
    "invoice-lines": [
        {
            "id": 350285,
            "description": "Office lease April 2024",
            "line-num": 1,
            "po-number": None,
            "order-line-num": None,
            "quantity": None,
            "price": "100.00",
            "tax-rate": None,
            "tax-amount": "0.00",
            "total": "100.00",
            "type": "InvoiceAmountLine",
            "tax-code": {"id": 1, "code": "test", "percentage": 0.0, "description": "Zero rated sales"},
            "account": {
                "id": 23586,
                "name": "Rent-Administration-Head office",
                "code": "6100-ADM-P100",
                "active": True,
                "account-type-id": 54,
                "segment-1": "6100",
                "segment-2": "ADM",
                "segment-3": "P100",
            },
        }
    ],
}


def http_event(method, route_key, path, path_parameters, headers, body, received, query=None):
    """An HTTP API (payload 2.0) proxy event as API Gateway hands it to the function."""
    user_agent = headers.get("user-agent")
    query = query or {}
    # The Coupa sample's id as it was; others derived, so each sample has its own.
    request_id = (
        "VbPQJhlPIAMEYbA="
        if path.startswith("/webhooks/coupa/")
        else hashlib.sha256(f"{method} {path} {received}".encode()).hexdigest()[:15].upper() + "="
    )
    raw_query = "&".join(f"{k}={v}" for k, v in query.items())
    event = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": raw_query,
        "headers": {
            **headers,
            "host": f"{API_ID}.execute-api.{REGION}.amazonaws.com",
            "x-amzn-trace-id": "Root=1-6609f02e-3f1e5c7a9b0d2e4f6a8c0b1d",
            "x-forwarded-for": "203.0.113.10",
            "x-forwarded-port": "443",
            "x-forwarded-proto": "https",
        },
    }
    if query:
        event["queryStringParameters"] = dict(query)
    event["requestContext"] = {
        "accountId": ACCOUNT,
        "apiId": API_ID,
        "domainName": f"{API_ID}.execute-api.{REGION}.amazonaws.com",
        "domainPrefix": API_ID,
        "http": {
            "method": method,
            "path": path,
            "protocol": "HTTP/1.1",
            "sourceIp": "203.0.113.10",
            **({"userAgent": user_agent} if user_agent else {}),
        },
        "requestId": request_id,
        "routeKey": route_key,
        "stage": "$default",
        "time": datetime.fromisoformat(received).strftime("%d/%b/%Y:%H:%M:%S +0000"),
        "timeEpoch": epoch_ms(received),
    }
    event["pathParameters"] = path_parameters
    if body is not None:
        event["body"] = body
        event["headers"]["content-length"] = str(len(body.encode()))
    event["isBase64Encoded"] = False
    event["headers"] = dict(sorted(event["headers"].items()))
    return event


# The template's webhook routes: GET and POST on one shape that serves both URL forms,
# /webhooks/<integration>/<channel> and the earlier /webhooks/<channel>/<integration> (an HTTP
# API refuses two routes that differ only in their parameters' names).
WEBHOOK_ROUTE = "/webhooks/{first}/{second}"


def route(method):
    return f"{method} {WEBHOOK_ROUTE}"


def segments(first, second):
    """The path parameters API Gateway gives for /webhooks/<first>/<second>."""
    return {"first": first, "second": second}


def webhook_event(signature, first="coupa", second=INTEGRATION):
    """A Coupa call-out; by default on the URL of earlier versions, /webhooks/coupa/<integration>,
    that Coupa instances are set up with."""
    body = compact(COUPA_INVOICE)
    return http_event(
        "POST",
        route("POST"),
        f"/webhooks/{first}/{second}",
        segments(first, second),
        {
            "accept": "application/json",
            "content-type": "application/json",
            "user-agent": "Coupa-Webhooks/1.0",
            "x-coupa-signature": signature(body),
        },
        body,
        "2024-03-31T23:19:10+00:00",
    )


# ----------------------------------------------------------------------------- BC notifications


def bc_notification_event():
    """A BC change notification (business-central.md A8): a thin batch, one purchase invoice
    changed, carrying the subscription's clientState, by POST on the URL of a subscription
    made by an earlier version, /webhooks/bc/<integration>."""
    body = compact(
        {
            "value": [
                {
                    "subscriptionId": "c670ea73cacb459bb51dc1740da2f1db",
                    "clientState": BC_CLIENT_STATE,
                    "expirationDateTime": "2024-04-03T23:00:00Z",
                    "resource": f"api/v2.0/companies({BC_COMPANY})/purchaseInvoices(26814998-936a-401c-81c1-0e848a64971d)",
                    "changeType": "updated",
                    "lastModifiedDateTime": "2024-03-31T23:19:40.467Z",
                }
            ]
        }
    )
    return http_event(
        "POST",
        route("POST"),
        f"/webhooks/bc/{INTEGRATION}",
        segments("bc", INTEGRATION),
        {"content-type": "application/json; charset=utf-8"},
        body,
        "2024-03-31T23:20:10+00:00",
    )


BC_VALIDATION_TOKEN = "b1d8a9e0f3c24c7e9a5d6b2f1e0c3a7d"


def bc_handshake_event():
    """BC's validation handshake on creating or renewing a subscription (A8):
    `notificationUrl?validationToken=<token>`, no body. Its method is undocumented; this is
    the GET, through the template's GET route."""
    return http_event(
        "GET",
        route("GET"),
        f"/webhooks/bc/{INTEGRATION}",
        segments("bc", INTEGRATION),
        {},
        None,
        "2024-03-31T23:00:00+00:00",
        query={"validationToken": BC_VALIDATION_TOKEN},
    )


def good_signature(body):
    return "sha256=" + hmac.new(WEBHOOK_SECRET, body.encode(), hashlib.sha256).hexdigest()


def bad_signature(body):
    # Signed with another key: well-formed, wrong.
    return "sha256=" + hmac.new(b"not-the-webhook-secret", body.encode(), hashlib.sha256).hexdigest()


# ----------------------------------------------------------------------------- SQS FIFO


def sqs_record(queue, body, group_id, dedup, seq, sent_ms, receive_count, sender, n):
    return {
        "messageId": f"0c4a7e2b-5d1f-4b8e-9a3c-{n:012x}",
        "receiptHandle": f"AQEB{hashlib.sha256(f'{queue}{n}'.encode()).hexdigest()}",
        "body": body,
        "attributes": {
            "ApproximateReceiveCount": str(receive_count),
            "SentTimestamp": str(sent_ms),
            "SequenceNumber": str(seq),
            "MessageGroupId": group_id,
            "SenderId": f"AROAEXAMPLEROLEID12345:{STACK}-{sender}",
            "MessageDeduplicationId": dedup,
            "ApproximateFirstReceiveTimestamp": str(sent_ms + 25),
        },
        "messageAttributes": {},
        "md5OfBody": hashlib.md5(body.encode()).hexdigest(),
        "eventSource": "aws:sqs",
        "eventSourceARN": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{STACK}-{queue}.fifo",
        "awsRegion": REGION,
    }


def ingest_batch():
    # (source id, version as seen, via, receive count, sender)
    seen = [
        ("92010", "2024-03-31T23:19:09+00:00", "poll", 1, "poller"),
        ("92011", "2024-03-31T23:24:41+00:00", "poll", 1, "poller"),
        # Coupa's own offset, as the webhook passes `updated-at` through; a second delivery.
        ("92012", "2024-04-01T02:31:05+03:00", "webhook", 2, "webhook"),
    ]
    records = []
    for n, (source_id, version, via, receives, sender) in enumerate(seen, start=1):
        msg = {
            "integration": INTEGRATION,
            "kind": "invoice",
            "source_id": source_id,
            "version": version,
            "via": via,
        }
        records.append(
            sqs_record(
                "ingest",
                compact(msg),
                dedup_id([INTEGRATION, "invoice", source_id]),
                dedup_id([INTEGRATION, "invoice", source_id, version, ""]),
                18849496460467696128 + n,
                epoch_ms("2024-03-31T23:30:00+00:00") + n * 7,
                receives,
                sender,
                n,
            )
        )
    return {"Records": records}


RESOLVED = [
    {
        "source_id": "92010",
        "version": "2024-03-31T23:19:09Z",
        "kind": "invoice",
        "vendor_number": "V10000",
        "vendor_invoice_number": "Test 10",
        "supplier_name": "Acme Office Leasing",
        "invoice_date": "2024-04-01",
        "total": {"amount": "100.00", "currency": "USD"},
        "lines": [
            {
                "description": "Office lease April 2024",
                "gl_account": "6100",
                "quantity": "1",
                "unit_cost": "100.00",
                "dimensions": [["DEPARTMENT", "ADM"], ["PROJECT", "P100"]],
            }
        ],
    },
    {
        "source_id": "92011",
        "version": "2024-03-31T23:24:41Z",
        "kind": "invoice",
        "vendor_number": "V20000",
        "vendor_invoice_number": "INV-2024-0415",
        "supplier_name": "Northwind Supplies",
        "invoice_date": "2024-03-29",
        "total": {"amount": "200.00", "currency": "USD"},
        "lines": [
            {
                "description": "Toner cartridges",
                "gl_account": "6420",
                "quantity": "12",
                "unit_cost": "10.1250",
                "dimensions": [["DEPARTMENT", "ADM"], ["PROJECT", "P100"]],
            },
            {
                "description": "Delivery",
                "gl_account": "6430",
                "quantity": "1",
                "unit_cost": "78.50",
                "dimensions": [["DEPARTMENT", "OPS"]],
            },
        ],
    },
]


def post_batch():
    records = []
    for n, invoice in enumerate(RESOLVED, start=1):
        ts = epoch_ms(invoice["version"].replace("Z", "+00:00")) // 1000
        records.append(
            sqs_record(
                "post",
                compact({"integration": INTEGRATION, "invoice": invoice}),
                dedup_id([INTEGRATION, "invoice", invoice["source_id"]]),
                dedup_id([INTEGRATION, "post", invoice["source_id"], str(ts)]),
                18849496460467697152 + n,
                epoch_ms("2024-03-31T23:30:02+00:00") + n * 11,
                1,
                "mapper",
                100 + n,
            )
        )
    return {"Records": records}


if __name__ == "__main__":
    write("webhook-coupa.json", webhook_event(good_signature))
    write("webhook-coupa-bad-signature.json", webhook_event(bad_signature))
    # The same call-out on the URL of this version: /webhooks/<integration>/<channel>.
    write("webhook-coupa-new-route.json", webhook_event(good_signature, INTEGRATION, "coupa"))
    # With a SAM `Schedule` event and `Input`, Lambda receives the Input itself. The template's
    # schedules run every configured integration (PollIntegration "*").
    write("schedule-poll.json", {"integrations": "*", "task": "poll"})
    write("schedule-renew-subscriptions.json", {"integrations": "*", "task": "renew_subscriptions"})
    # One integration, as an operator invokes the poller by hand.
    write("schedule-poll-one.json", {"integration": INTEGRATION})
    write("webhook-bc-notification.json", bc_notification_event())
    write("webhook-bc-handshake.json", bc_handshake_event())
    write("sqs-ingest-batch.json", ingest_batch())
    write("sqs-post-batch.json", post_batch())
