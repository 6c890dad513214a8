"""Standard Webhooks signing: the reference test vector, and agreement with the package."""

from __future__ import annotations

from datetime import UTC, datetime

from standardwebhooks.webhooks import Webhook

from max_server.domain import signatures

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
MSG_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
TIMESTAMP = 1614265330
PAYLOAD = b'{"test": 2432232314}'
EXPECTED = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_the_standard_webhooks_test_vector() -> None:
    assert signatures.sign(SECRET, MSG_ID, TIMESTAMP, PAYLOAD) == EXPECTED
    assert signatures.sign(SECRET, MSG_ID, TIMESTAMP, PAYLOAD) != EXPECTED[:-2] + "A="  # the negative vector
    assert signatures.sign(SECRET, MSG_ID, TIMESTAMP + 1, PAYLOAD) != EXPECTED


def test_our_secrets_and_signatures_are_what_the_package_expects() -> None:
    secret = signatures.new_secret()
    assert secret.startswith("whsec_") and len(signatures.key_bytes(secret)) == 32
    body = '{"id":"1","type":"ping","data":{"texto":"añil"}}'.encode()
    ours = signatures.sign(secret, "msg_1_ab", TIMESTAMP, body)
    assert ours == Webhook(secret).sign("msg_1_ab", datetime.fromtimestamp(TIMESTAMP, UTC), body.decode())


def test_during_a_rotation_both_secrets_sign() -> None:
    old, new = signatures.new_secret(), signatures.new_secret()
    header = signatures.signature_header([new, old], "msg_9_cd", TIMESTAMP, PAYLOAD)
    first, second = header.split(" ")
    assert first == signatures.sign(new, "msg_9_cd", TIMESTAMP, PAYLOAD)
    assert second == signatures.sign(old, "msg_9_cd", TIMESTAMP, PAYLOAD)
    headers = {"webhook-id": "msg_9_cd", "webhook-timestamp": str(TIMESTAMP), "webhook-signature": header}
    assert signatures.verify([old], headers, PAYLOAD, now_ts=TIMESTAMP) is None
    assert signatures.verify([new], headers, PAYLOAD, now_ts=TIMESTAMP) is None
    assert signatures.verify([new], headers, PAYLOAD + b" ", now_ts=TIMESTAMP) == "signature mismatch"
