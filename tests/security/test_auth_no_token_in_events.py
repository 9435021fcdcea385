"""Finding 2: the set-password and reset links (raw tokens) were in auth's events, and so in
its `event_outbox` for a week after publishing, and in notify's queue rows until sent.

Now the events name a password request; notify asks auth for the link when it sends the
email, and the raw token exists only in that email. Here, on the running suite: a company
created without a password and a reset requested over HTTP, both emails received, then the
events that went over the bus carry no token and no link, and no text column of any table of
auth or notify holds either token.
"""

from __future__ import annotations

import json
import re
import uuid

import pytest

from tests.security.test_secrets_at_rest import secrets_in
from tests.support.bus import watch_events
from tests.support.smtp_sink import text_body

pytestmark = pytest.mark.e2e

LINK = re.compile(r"https?://\S+/reset-password#token=([A-Za-z0-9_\-]+)")


def emailed_token(smtp_sink, email: str, subject_part: str) -> str:
    message = smtp_sink.wait_for(lambda m: subject_part in (m["Subject"] or ""), to=email)
    found = LINK.search(text_body(message))
    assert found, text_body(message)
    return found.group(1)


def test_the_raw_tokens_are_only_in_the_emails(suite, api, smtp_sink) -> None:
    email = f"links.{uuid.uuid4().hex[:10]}@example.test"
    with watch_events(suite.env["AMQP_URI"], "auth") as events:
        suite.portalctl(
            "company", "create", "--name", "Links Ltd", "--contact-name", "Ada", "--email", email
        )
        setup_token = emailed_token(smtp_sink, email, "Welcome")
        accepted = api.post("/api/v1/password-resets", json={"login": email})
        assert accepted.status_code == 202, accepted.text
        reset_token = emailed_token(smtp_sink, email, "eset")
        published = [
            event
            for kind in ("company_created", "password_reset_requested")
            for event in events.wait_for(kind)
            if event["company"]["contact_email"] == email
        ]
    assert len(published) == 2
    for event in published:
        text = json.dumps(event)
        assert setup_token not in text and reset_token not in text, event
        assert "#token=" not in text and not {"set_password_url", "reset_url"} & set(event)

    tokens = {"the set-up token": setup_token, "the reset token": reset_token}
    found = [
        f"{service}: {row}"
        for service in ("auth", "notify")
        for row in secrets_in(suite.env[f"{service.upper()}_DATABASE_URL"], tokens)
    ]
    assert not found, "raw tokens stored:\n" + "\n".join(found)

    # the emailed links still do their job, once
    confirm = {"token": reset_token, "new_password": f"Umber-Heron-{uuid.uuid4().hex[:6]}"}
    assert api.post("/api/v1/password-resets/confirm", json=confirm).status_code == 204
    assert api.post("/api/v1/password-resets/confirm", json=confirm).status_code == 400
